package cli_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestJobsCancelByFilter cancels more waiting jobs than one progress step
// by queue and kind, and checks the jobs, the report, the plain progress
// counts on stderr, and that finished jobs and other queues are left alone.
func TestJobsCancelByFilter(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		client, err := queue.New(drv, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		const n = 150
		var mail []int64
		for i := range n {
			opts := queue.EnqueueOptions{Queue: "mail"}
			if i%2 == 1 {
				opts.ScheduleIn = time.Hour
			}
			j, err := client.Enqueue(ctx, "send", map[string]int{"i": i}, opts)
			if err != nil {
				t.Fatal(err)
			}
			mail = append(mail, j.ID)
		}
		done, err := client.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: done.ID, WorkerID: "w"}); err != nil {
			t.Fatal(err)
		}
		if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: done.ID, Attempt: 1}}}); err != nil {
			t.Fatal(err)
		}
		elsewhere, err := client.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "sms"})
		if err != nil {
			t.Fatal(err)
		}

		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		// Usage: an ID or a filter, not neither, not both.
		for _, c := range []struct {
			args []string
			msg  string
		}{
			{[]string{"jobs", "cancel"}, "jobs cancel needs a job ID or a filter"},
			{[]string{"jobs", "cancel", "5", "-queue", "mail"}, "not both"},
			{[]string{"jobs", "cancel", "-state", "bogus"}, `unknown state "bogus"`},
		} {
			r := a.run(c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.msg) || r.stdout != "" {
				t.Errorf("acidic %s: exit %d, stderr %q; want 2 saying %q", strings.Join(c.args, " "), r.code, r.stderr, c.msg)
			}
		}
		if j, err := client.Get(ctx, mail[0]); err != nil || j.State != acidic.JobAvailable {
			t.Fatalf("a refused command changed job %d: %v, %v", mail[0], j, err)
		}

		r := a.run("-json", "jobs", "cancel", "-queue", "mail", "-kind", "send")
		if r.code != 0 {
			t.Fatalf("jobs cancel -queue mail: exit %d\n%s", r.code, r.stderr)
		}
		var res cli.CancelJobsJSON
		decodeStrict(t, r.stdout, &res)
		var ids []int64
		for _, j := range res.Cancelled {
			ids = append(ids, j.ID)
			if j.State != string(acidic.JobCancelled) {
				t.Errorf("cancelled job %d is %s", j.ID, j.State)
			}
		}
		if res.Matched != n || res.Skipped != 0 || !slices.Equal(ids, mail) {
			t.Errorf("jobs cancel -queue mail: matched %d, skipped %d, cancelled %v; want %d, 0 and %v", res.Matched, res.Skipped, ids, n, mail)
		}
		if want := fmt.Sprintf("cancelling jobs: 100/%d\ncancelling jobs: %d/%d\n", n, n, n); r.stderr != want {
			t.Errorf("progress on stderr %q, want %q", r.stderr, want)
		}
		for id, want := range map[int64]acidic.JobState{done.ID: acidic.JobCompleted, elsewhere.ID: acidic.JobAvailable} {
			if j, err := client.Get(ctx, id); err != nil || j.State != want {
				t.Errorf("job %d: %v, %v; want it still %s", id, j, err, want)
			}
		}

		// A small batch prints no progress, and the text report; nothing left
		// to cancel is not an error.
		if out := a.text("jobs", "cancel", "-queue", "sms"); out != "cancelled 1 of 1 matching jobs (0 skipped: finished before their turn)\n" {
			t.Errorf("jobs cancel -queue sms printed %q", out)
		}
		if out := a.text("jobs", "cancel", "-queue", "sms"); out != "cancelled 0 of 0 matching jobs (0 skipped: finished before their turn)\n" {
			t.Errorf("second jobs cancel -queue sms printed %q", out)
		}
	})
}

// TestRunsCancelByFilter cancels runs by workflow: a parent with its
// awaited children, then the remaining runs of the children's workflow,
// each ending right (its jobs cancelled, its children cancelled, its
// OnFinish once); and cancelling by filter the jobs that carry runs ends
// those runs.
func TestRunsCancelByFilter(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		type nArgs struct {
			N int `json:"n"`
		}
		var mu sync.Mutex
		finished := map[uuid.UUID]int{}
		onFinish := func(_ context.Context, r *acidic.Run) error {
			mu.Lock()
			defer mu.Unlock()
			finished[r.ID]++
			return nil
		}
		kid := workflow.Define("kid", workflow.Options{Queue: "parked", OnFinish: onFinish},
			steps.Do("work", func(context.Context, *steps.Context[nArgs, struct{}]) error { return nil }))
		solo := workflow.Define("solo", workflow.Options{Queue: "parked", OnFinish: onFinish},
			steps.Do("work", func(context.Context, *steps.Context[nArgs, struct{}]) error { return nil }))
		fan := workflow.Define("fan", workflow.Options{OnFinish: onFinish},
			steps.AwaitRuns[nArgs, struct{}]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "kid", Args: nArgs{N: 1}},
				steps.RunRequest{Workflow: "kid", Args: nArgs{N: 2}}),
			steps.Do("gather", func(context.Context, *steps.Context[nArgs, struct{}]) error { return nil }))
		eng := enginetest.New(t, drv, enginetest.Config(1), kid, solo, fan)
		enqueue := func(name string, n int, q string) uuid.UUID {
			t.Helper()
			res, err := eng.Enqueue(ctx, name, nArgs{N: n}, workflow.EnqueueOptions{Queue: q})
			if err != nil {
				t.Fatal(err)
			}
			return res.Run.ID
		}
		parent := enqueue("fan", 0, "")
		succeeded := enqueue("kid", 0, queue.DefaultQueue)
		if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
			t.Fatal(err)
		}
		var kids []uuid.UUID
		for i := range 3 {
			kids = append(kids, enqueue("kid", 10+i, ""))
		}
		solos := []uuid.UUID{enqueue("solo", 1, ""), enqueue("solo", 2, "")}
		children, err := eng.List(ctx, acidic.RunFilter{ParentRunID: parent})
		if err != nil || len(children) != 2 {
			t.Fatalf("set-up: children %v, %v", children, err)
		}
		get := func(id uuid.UUID) *acidic.Run {
			t.Helper()
			r, err := eng.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if s := get(parent).State; s != acidic.RunAwaiting {
			t.Fatalf("set-up: parent is %s", s)
		}

		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		for _, args := range [][]string{{"runs", "cancel"}, {"runs", "cancel", parent.String(), "-workflow", "fan"}} {
			if r := a.run(args...); r.code != 2 || r.stdout != "" {
				t.Errorf("acidic %s: exit %d, stdout %q; want a usage error", strings.Join(args, " "), r.code, r.stdout)
			}
		}
		if s := get(kids[0]).State; s != acidic.RunPending {
			t.Fatalf("a refused command changed run %s: %s", kids[0], s)
		}

		var res cli.CancelRunsJSON
		a.json(&res, "runs", "cancel", "-workflow", "fan")
		if res.Matched != 1 || res.Skipped != 0 || len(res.Cancelled) != 1 || res.Cancelled[0].ID != parent.String() || res.Cancelled[0].State != "cancelled" {
			t.Errorf("runs cancel -workflow fan: %+v, want the parent cancelled", res)
		}
		for _, c := range children {
			if r := get(c.ID); r.State != acidic.RunCancelled || r.Error != "parent run cancelled" {
				t.Errorf("child %s is %s (%q), want cancelled with its parent", c.ID, r.State, r.Error)
			}
		}
		// The children are cancelled already: only the three waiting kids match.
		if out := a.text("runs", "cancel", "-workflow", "kid"); out != "cancelled 3 of 3 matching runs (0 skipped: finished before their turn)\n" {
			t.Errorf("runs cancel -workflow kid printed %q", out)
		}
		// Jobs cancelled by filter end the runs they carry.
		var jres cli.CancelJobsJSON
		a.json(&jres, "jobs", "cancel", "-kind", "solo")
		if jres.Matched != 2 || len(jres.Cancelled) != 2 {
			t.Errorf("jobs cancel -kind solo: %+v, want the 2 jobs of the solo runs", jres)
		}

		for _, q := range []string{"parked", queue.DefaultQueue} {
			if _, err := eng.Queue().Drain(ctx, q, queue.DrainOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		ended := append(append([]uuid.UUID{parent, children[0].ID, children[1].ID}, kids...), solos...)
		for _, id := range ended {
			r := get(id)
			if r.State != acidic.RunCancelled || r.SettledAt == nil {
				t.Errorf("run %s (%s) is %s, settled %v; want cancelled, settled", id, r.Workflow, r.State, r.SettledAt)
			}
			live, err := eng.Queue().List(ctx, acidic.JobFilter{RunID: id, States: []acidic.JobState{
				acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}})
			if err != nil || len(live) != 0 {
				t.Errorf("cancelled run %s still has %d jobs to run (%v)", id, len(live), err)
			}
			mu.Lock()
			calls := finished[id]
			mu.Unlock()
			if calls != 1 {
				t.Errorf("run %s (%s): OnFinish ran %d times, want once", id, r.Workflow, calls)
			}
		}
		for _, id := range solos {
			if r := get(id); !strings.Contains(r.Error, "cancelled by an operator") {
				t.Errorf("solo run %s ended with %q, want its job's operator cancel", id, r.Error)
			}
		}
		if r := get(succeeded); r.State != acidic.RunSucceeded {
			t.Errorf("the succeeded run is %s", r.State)
		}
	})
}
