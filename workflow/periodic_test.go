package workflow_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type reportArgs struct {
	Region string `json:"region"`
}

// clock is a time source the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// periodicEngine is an engine (not started) with the report workflow and a
// periodic run of it every hour, on clk.
func periodicEngine(t *testing.T, drv storage.Driver, clk *clock, args any) *workflow.Engine {
	t.Helper()
	eng, err := workflow.NewEngine(drv, workflow.Config{Queue: queue.Config{Now: clk.Now, Logger: quietLogger()}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	wf := workflow.Define("report", workflow.Options{},
		steps.Do("only", func(context.Context, *steps.Context[reportArgs, struct{}]) error { return nil }))
	if err := eng.Register(wf); err != nil {
		t.Fatal(err)
	}
	if err := eng.RegisterPeriodic(workflow.Periodic{Name: "hourly-report", Spec: "@hourly", Workflow: "report", Args: args}); err != nil {
		t.Fatal(err)
	}
	return eng
}

// TestPeriodicWorkflowOneRunPerPeriod: two engines race their periodic
// passes at each period; each period makes one run, whose idempotency key
// is the period's, and the runs carry the schedule's arguments.
func TestPeriodicWorkflowOneRunPerPeriod(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 8}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		start := time.Date(2030, 5, 1, 9, 30, 0, 0, time.UTC)
		clk := &clock{t: start}
		args := reportArgs{Region: "eu"}
		engines := []*workflow.Engine{periodicEngine(t, drv, clk, args), periodicEngine(t, drv, clk, args)}
		race := func() int {
			var wg sync.WaitGroup
			var mu sync.Mutex
			n := 0
			for _, e := range engines {
				for range 3 {
					wg.Go(func() {
						res, err := e.Queue().EnqueuePeriodic(ctx)
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						n += len(res.Enqueued)
						mu.Unlock()
					})
				}
			}
			wg.Wait()
			return n
		}
		race()
		for i := 1; i <= 5; i++ {
			at := start.Truncate(time.Hour).Add(time.Duration(i) * time.Hour)
			clk.Set(at.Add(10 * time.Second))
			if n := race(); n != 1 {
				t.Fatalf("period %s enqueued %d times", at, n)
			}
			r, err := engines[0].GetByKey(ctx, "report", queue.Period{Name: "hourly-report", At: at}.Key())
			if err != nil {
				t.Fatalf("the run of period %s: %v", at, err)
			}
			if string(r.Args) != `{"region": "eu"}` && string(r.Args) != `{"region":"eu"}` {
				t.Fatalf("run args %s", r.Args)
			}
		}
		runs, err := engines[0].List(ctx, acidic.RunFilter{Workflow: "report"})
		if err != nil || len(runs) != 5 {
			t.Fatalf("%d runs for 5 periods (%v)", len(runs), err)
		}
		jobs, err := drv.JobList(ctx, acidic.JobFilter{Kind: "report"})
		if err != nil || len(jobs) != 5 {
			t.Fatalf("%d jobs for 5 runs (%v)", len(jobs), err)
		}
	})
}

// TestPeriodicWorkflowRunOfThePeriodExists: when the period's run already
// exists, with other arguments even (the schedule's arguments changed
// between deploys), the pass leaves it and moves the schedule on instead of
// failing at every pass.
func TestPeriodicWorkflowRunOfThePeriodExists(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		start := time.Date(2030, 5, 1, 9, 30, 0, 0, time.UTC)
		clk := &clock{t: start}
		eng := periodicEngine(t, drv, clk, reportArgs{Region: "us"})
		if _, err := eng.Queue().EnqueuePeriodic(ctx); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)
		key := queue.Period{Name: "hourly-report", At: at}.Key()
		old, err := eng.Enqueue(ctx, "report", reportArgs{Region: "eu"}, workflow.EnqueueOptions{Key: key})
		if err != nil {
			t.Fatal(err)
		}
		clk.Set(at.Add(time.Second))
		res, err := eng.Queue().EnqueuePeriodic(ctx)
		if err != nil || len(res.Enqueued) != 1 {
			t.Fatalf("pass: %+v, %v; want the period handled", res, err)
		}
		if !res.NextRunAt.Equal(at.Add(time.Hour)) {
			t.Fatalf("next run %s, want the schedule moved on", res.NextRunAt)
		}
		runs, err := eng.List(ctx, acidic.RunFilter{Workflow: "report"})
		if err != nil || len(runs) != 1 || runs[0].ID != old.Run.ID {
			t.Fatalf("runs %v (%v), want the existing one only", runs, err)
		}
	})
}

// TestPeriodicWorkflowBadInput: an unknown workflow, arguments that do not
// decode, a Key or ScheduledAt, a malformed expression or time zone, a name
// registered twice, registration after Start: typed errors, and nothing is
// written.
func TestPeriodicWorkflowBadInput(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		clk := &clock{t: time.Date(2030, 5, 1, 9, 30, 0, 0, time.UTC)}
		eng := periodicEngine(t, drv, clk, reportArgs{})
		good := workflow.Periodic{Name: "p", Spec: "@daily", Workflow: "report"}
		mod := func(f func(*workflow.Periodic)) workflow.Periodic { p := good; f(&p); return p }
		cases := []struct {
			name string
			p    workflow.Periodic
			want error
		}{
			{"unknown workflow", mod(func(p *workflow.Periodic) { p.Workflow = "nope" }), workflow.ErrUnknownWorkflow},
			{"empty workflow", mod(func(p *workflow.Periodic) { p.Workflow = "" }), workflow.ErrInvalid},
			{"args do not decode", mod(func(p *workflow.Periodic) { p.Args = map[string]int{"region": 3} }), workflow.ErrArgsDecode},
			{"Key", mod(func(p *workflow.Periodic) { p.Opts.Key = "k" }), workflow.ErrInvalid},
			{"ScheduledAt", mod(func(p *workflow.Periodic) { p.Opts.ScheduledAt = time.Now() }), workflow.ErrInvalid},
			{"bad queue", mod(func(p *workflow.Periodic) { p.Opts.Queue = "a\x00b" }), workflow.ErrInvalid},
			{"malformed expression", mod(func(p *workflow.Periodic) { p.Spec = "0 25 * * *" }), queue.ErrInvalidSpec},
			{"unknown time zone", mod(func(p *workflow.Periodic) { p.TimeZone = "Atlantis/Capital" }), queue.ErrUnknownTimeZone},
			{"name taken", mod(func(p *workflow.Periodic) { p.Name = "hourly-report" }), queue.ErrDuplicatePeriodic},
		}
		for _, tc := range cases {
			if err := eng.RegisterPeriodic(tc.p); !errors.Is(err, tc.want) {
				t.Errorf("%s: RegisterPeriodic = %v, want %v", tc.name, err, tc.want)
			}
		}
		res, err := eng.Queue().EnqueuePeriodic(ctx)
		if err != nil || len(res.Enqueued) != 0 {
			t.Fatalf("pass: %+v, %v", res, err)
		}
		rows, err := drv.PeriodicList(ctx, storage.PeriodicListParams{})
		if err != nil || len(rows) != 1 || rows[0].Name != "hourly-report" {
			t.Fatalf("schedules %v (%v), want only hourly-report", rows, err)
		}
		startEngine(t, eng)
		if err := eng.RegisterPeriodic(good); !errors.Is(err, workflow.ErrStarted) {
			t.Fatalf("RegisterPeriodic after Start = %v, want ErrStarted", err)
		}
	})
}
