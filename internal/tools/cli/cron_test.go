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

// TestCronList: cron list shows each schedule with its kind, spec, time
// zone, policy, last and next run, as text and as JSON; with none it says
// so, and -json prints [].
func TestCronList(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 2}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}

		if out := a.text("cron", "list"); out != "no periodic schedules in "+place(drv)+"\n" {
			t.Fatalf("cron list on an empty schema: %q", out)
		}
		var none []cli.CronJSON
		if out := a.json(&none, "cron", "list"); strings.TrimSpace(out) != "[]" {
			t.Fatalf("cron list -json on an empty schema: %q", out)
		}

		now := time.Date(2030, 3, 1, 8, 30, 0, 0, time.UTC)
		c, err := queue.New(drv, queue.Config{Now: func() time.Time { return now }, Periodic: []queue.PeriodicJob{
			{Name: "nightly-report", Spec: "CRON_TZ=Europe/Paris 0 2 * * *", Kind: "report", Missed: acidic.MissedSkip},
			{Name: "poll", Spec: "@every 1m", Kind: "poll"},
		}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.EnqueuePeriodic(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(90 * time.Second)
		if _, err := c.EnqueuePeriodic(ctx); err != nil { // poll's first period
			t.Fatal(err)
		}

		out := a.text("cron", "list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "NEXT RUN") {
			t.Fatalf("cron list:\n%s", out)
		}
		for _, want := range [][]string{
			{"nightly-report", "report", "0 2 * * *", "Europe/Paris", "skip", "-", "2030-03-02T01:00:00Z"},
			{"poll", "poll", "@every 1m", "UTC", "run_once", "2030-03-01T08:31:00Z", "2030-03-01T08:32:00Z"},
		} {
			line := lines[1]
			if want[0] == "poll" {
				line = lines[2]
			}
			for _, cell := range want {
				if !strings.Contains(line, cell) {
					t.Errorf("cron list line %q lacks %q", line, cell)
				}
			}
		}

		var got []cli.CronJSON
		a.json(&got, "cron", "list")
		if len(got) != 2 {
			t.Fatalf("cron list -json: %+v", got)
		}
		n, p := got[0], got[1]
		if n.Name != "nightly-report" || n.Kind != "report" || n.Spec != "0 2 * * *" || n.TimeZone != "Europe/Paris" || n.Policy != "skip" ||
			n.LastRunAt != nil || !n.NextRunAt.Equal(time.Date(2030, 3, 2, 1, 0, 0, 0, time.UTC)) || n.UpdatedAt.IsZero() {
			t.Errorf("cron list -json nightly-report: %+v", n)
		}
		if p.Name != "poll" || p.Policy != "run_once" || p.LastRunAt == nil || !p.LastRunAt.Equal(time.Date(2030, 3, 1, 8, 31, 0, 0, time.UTC)) ||
			!p.NextRunAt.Equal(time.Date(2030, 3, 1, 8, 32, 0, 0, time.UTC)) {
			t.Errorf("cron list -json poll: %+v", p)
		}

		// Usage errors: no subcommand, an argument too many.
		if r := a.run("cron"); r.code != 2 || !strings.Contains(r.stderr, "cron needs list") {
			t.Errorf("acidic cron: exit %d, stderr %q", r.code, r.stderr)
		}
		if r := a.run("cron", "list", "x"); r.code != 2 || !strings.Contains(r.stderr, `unexpected argument "x"`) {
			t.Errorf("acidic cron list x: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}
