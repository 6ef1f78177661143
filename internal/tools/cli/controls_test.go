package cli_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// queues pause, resume and scale act on the nodes working the queue and
// print its controls (text and JSON); queues controls lists them; bad input
// exits non-zero, names the problem and writes nothing.
func TestQueueControlCommands(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ws := queue.NewWorkers()
		if err := ws.Handle("noop", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		node, err := queue.New(drv, queue.Config{Workers: ws, Queues: map[string]queue.QueueConfig{"mail": {MaxWorkers: 2}},
			PollInterval: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = node.Stop(context.Background()) }()
		state := func() queue.QueueState { s, _ := node.QueueState("mail"); return s }
		waitState := func(what string, cond func(queue.QueueState) bool) {
			t.Helper()
			for !cond(state()) {
				select {
				case <-ctx.Done():
					t.Fatalf("waiting for the node to %s: %+v", what, state())
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		waitState("register its queue", func(s queue.QueueState) bool { return !s.ControlsReadAt.IsZero() })
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}

		// Bad input first: nothing is written.
		for _, c := range []struct {
			args    []string
			code    int
			mention string
		}{
			{[]string{"queues", "pause", "ghost"}, cli.ExitNotFound, `unknown queue "ghost"`},
			{[]string{"queues", "scale", "ghost", "2"}, cli.ExitNotFound, `unknown queue "ghost"`},
			{[]string{"queues", "resume", "ghost"}, cli.ExitNotFound, `unknown queue "ghost"`},
			{[]string{"queues", "pause"}, cli.ExitUsage, "queues pause needs QUEUE"},
			{[]string{"queues", "pause", "mail", "more"}, cli.ExitUsage, `unexpected argument "more"`},
			{[]string{"queues", "pause", "a\x1bb"}, cli.ExitUsage, `control character U+001B`},
			{[]string{"queues", "pause", strings.Repeat("q", 300)}, cli.ExitUsage, "a name is at most"},
			{[]string{"queues", "scale", "mail"}, cli.ExitUsage, "queues scale needs WORKERS"},
			{[]string{"queues", "scale", "mail", "0"}, cli.ExitUsage, `workers "0" is not a whole number from 1`},
			{[]string{"queues", "scale", "mail", "-2"}, cli.ExitUsage, "flag provided but not defined: -2"},
			{[]string{"queues", "scale", "mail", "many"}, cli.ExitUsage, `workers "many"`},
			{[]string{"queues", "scale", "mail", "2147483648"}, cli.ExitUsage, `workers "2147483648"`},
			{[]string{"queues", "controls", "mail"}, cli.ExitUsage, `unexpected argument "mail"`},
			{[]string{"queues", "bogus"}, cli.ExitUsage, `unexpected argument "bogus"`},
		} {
			r := a.run(c.args...)
			if r.code != c.code || r.stdout != "" || !strings.Contains(r.stderr, c.mention) {
				t.Errorf("acidic %q: exit %d, stdout %q, stderr %q; want exit %d naming %q", c.args, r.code, r.stdout, r.stderr, c.code, c.mention)
			}
		}
		if got, err := node.QueueControls(ctx); err != nil || len(got) != 1 || got[0].Paused || got[0].MaxWorkers != 0 {
			t.Fatalf("controls after refused commands: %+v, %v; want mail as the node registered it", got, err)
		}

		// Text.
		fields, _ := detail(t, a.text("queues", "pause", "mail"))
		if fields["queue"] != "mail" || !strings.HasPrefix(fields["state"], "paused since ") || fields["workers"] != "each node's own (MaxWorkers)" {
			t.Errorf("queues pause mail: %v", fields)
		}
		waitState("pause", func(s queue.QueueState) bool { return s.Paused })
		fields, _ = detail(t, a.text("queues", "scale", "mail", "5"))
		if !strings.HasPrefix(fields["state"], "paused since ") || fields["workers"] != "5 per node" {
			t.Errorf("queues scale mail 5: %v", fields)
		}
		waitState("scale to 5", func(s queue.QueueState) bool { return s.MaxWorkers == 5 })
		rows := table(t, a.text("queues", "controls"), "QUEUE STATE WORKERS UPDATED")
		if len(rows) != 1 || rows[0][0] != "mail" || rows[0][1] != "paused" || rows[0][4] != "5" {
			t.Errorf("queues controls: %v", rows)
		}

		// JSON, in the documented shape.
		var ctl cli.QueueControlJSON
		a.json(&ctl, "queues", "scale", "mail", "default")
		if ctl.Queue != "mail" || !ctl.Paused || ctl.PausedAt == nil || ctl.MaxWorkers != nil || ctl.CreatedAt.IsZero() || ctl.UpdatedAt.Before(ctl.CreatedAt) {
			t.Errorf("queues scale mail default -json: %+v", ctl)
		}
		waitState("go back to its own workers", func(s queue.QueueState) bool { return s.MaxWorkers == 2 })
		a.json(&ctl, "queues", "resume", "mail")
		if ctl.Paused || ctl.PausedAt != nil {
			t.Errorf("queues resume mail -json: %+v", ctl)
		}
		waitState("resume", func(s queue.QueueState) bool { return !s.Paused })
		var list []cli.QueueControlJSON
		a.json(&list, "queues", "controls")
		if len(list) != 1 || list[0].Queue != "mail" || list[0].Paused {
			t.Errorf("queues controls -json: %+v", list)
		}
		// queues alone still counts jobs.
		job, err := node.Enqueue(ctx, "noop", nil, queue.EnqueueOptions{Queue: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		for j, err := drv.JobGet(ctx, storage.JobGetParams{ID: job.ID}); err != nil || j.State != acidic.JobCompleted; j, err = drv.JobGet(ctx, storage.JobGetParams{ID: job.ID}) {
			if ctx.Err() != nil {
				t.Fatalf("job in the resumed queue: %+v, %v; want it completed", j, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		var stats []cli.QueueJSON
		a.json(&stats, "queues")
		if len(stats) != 1 || stats[0].Queue != "mail" || stats[0].State != "completed" {
			t.Errorf("queues -json: %+v", stats)
		}
	})
}
