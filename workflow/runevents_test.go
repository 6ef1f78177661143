package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// describeEvents names events of run id, in order: kind, then the step or
// the final state.
func describeEvents(evs []events.Event, id uuid.UUID) string {
	var out []string
	for _, ev := range evs {
		if ev.RunID != id {
			continue
		}
		s := string(ev.Kind)
		switch {
		case ev.Step != "":
			s += " " + ev.Step
		case ev.Kind == events.RunFinished:
			s += " " + string(ev.RunState)
		}
		if ev.Attempt > 0 {
			s += fmt.Sprintf(" #%d", ev.Attempt)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// Every step and run outcome the issue lists is published, in order per
// run: a step that fails (and its job's retry), a step's transaction run
// again after a serialization failure, a halt, an operator's cancel, and a
// run's end, each with its attempt. On both drivers.
func TestRunAndStepEventsForEachOutcome(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		flaky := workflow.Define("ev-flaky", fastOptions(2),
			noop[profileArgs, noState]("a"),
			steps.Do("b", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				if sc.Attempt() == 1 {
					return errors.New("flaky")
				}
				return nil
			}))
		tries := 0
		retried := workflow.Define("ev-retried", fastOptions(1),
			steps.Do("s", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				if tries++; tries == 1 {
					return fmt.Errorf("step s: %w", acidic.ErrSerialization)
				}
				return nil
			}))
		halting := workflow.Define("ev-halt", fastOptions(1),
			steps.Do("h", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				return steps.Halt()
			}),
			noop[profileArgs, noState]("after"))
		idle := workflow.Define("ev-idle", fastOptions(1), noop[profileArgs, noState]("never"))
		e := newEngine(t, drv, engineConfig(1), flaky, retried, halting, idle)
		sub := e.Subscribe(events.Options{Buffer: 1024})
		defer sub.Close()

		ids := map[string]uuid.UUID{}
		for _, name := range []string{"ev-flaky", "ev-retried", "ev-halt"} {
			ids[name] = enqueue(t, e, name, profileArgs{})
		}
		drain(t, e)
		cancelled := enqueue(t, e, "ev-idle", profileArgs{})
		if r, err := e.Cancel(ctx, cancelled); err != nil || r.State != acidic.RunCancelled {
			t.Fatalf("Cancel = %v, %v", r, err)
		}
		// Cancelling it again changes nothing and publishes nothing;
		// CancelMany publishes run.cancelled for each run it cancels.
		if r, err := e.Cancel(ctx, cancelled); err != nil || r.State != acidic.RunCancelled {
			t.Fatalf("second Cancel = %v, %v", r, err)
		}
		many := []uuid.UUID{enqueue(t, e, "ev-idle", profileArgs{}), enqueue(t, e, "ev-idle", profileArgs{})}
		if got, err := e.CancelMany(ctx, acidic.RunFilter{Workflow: "ev-idle"}); err != nil || len(got) != 2 {
			t.Fatalf("CancelMany = %d runs, %v; want 2", len(got), err)
		}
		sub.Close()
		var evs []events.Event
		for ev := range sub.C {
			evs = append(evs, ev)
		}
		if sub.Dropped() != 0 {
			t.Fatalf("%d events dropped", sub.Dropped())
		}

		want := map[uuid.UUID]string{
			ids["ev-flaky"]: "run.started #1, step.committed a #1, step.failed b #1, job.failed #1, " +
				"run.started #2, step.committed b #2, run.finished succeeded #2, job.completed #2",
			ids["ev-retried"]: "run.started #1, step.retried s #1, step.committed s #1, run.finished succeeded #1, job.completed #1",
			ids["ev-halt"]:    "run.started #1, step.committed h #1, run.halted #1, job.completed #1",
			cancelled:         "run.cancelled",
			many[0]:           "run.cancelled",
			many[1]:           "run.cancelled",
		}
		for id, w := range want {
			if got := describeEvents(evs, id); got != w {
				t.Errorf("run %s events:\n got %s\nwant %s", id, got, w)
			}
		}
		for _, ev := range evs {
			if ev.Kind == events.StepFailed && (ev.Err == nil || ev.Err.Error() == "" || ev.Workflow != "ev-flaky" || ev.Queue != "default") {
				t.Errorf("step.failed event %+v: want the error, workflow and queue", ev)
			}
			if ev.Kind == events.RunCancelled && (ev.Workflow != "ev-idle" || ev.RunState != acidic.RunCancelled) {
				t.Errorf("run.cancelled event %+v", ev)
			}
		}
	})
}

// TestJobMiddlewarePanicEndsRunRight: a job middleware that panics (or
// ends its goroutine with runtime.Goexit, as t.FailNow does) on every
// attempt fails the run with the reason on its last attempt, under Drain
// and in a started engine (whose kept goroutines run the attempts): the
// job fails, then is discarded, the run ends failed once, and the step
// never runs.
func TestJobMiddlewarePanicEndsRunRight(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for _, tc := range []struct {
			name, reason string
			started      bool
			fail         func()
		}{
			{"drain-panic", "exporter exploded", false, func() { panic("exporter exploded") }},
			{"started-panic", "exporter exploded", true, func() { panic("exporter exploded") }},
			{"started-goexit", "runtime.Goexit", true, runtime.Goexit},
			{"drain-goexit", "runtime.Goexit", false, runtime.Goexit},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var mu sync.Mutex
				finished, ran := 0, 0
				opts := fastOptions(2)
				opts.OnFinish = func(ctx context.Context, r *acidic.Run) error {
					mu.Lock()
					finished++
					mu.Unlock()
					return nil
				}
				wf := workflow.Define("jmw-panic", opts,
					steps.Do("only", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
						mu.Lock()
						ran++
						mu.Unlock()
						return nil
					}))
				cfg := engineConfig(1)
				cfg.Queue.Middleware = []queue.JobMiddleware{func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error {
					if job.Kind == "jmw-panic" {
						tc.fail()
					}
					return next(ctx)
				}}
				e := newEngine(t, drv, cfg, wf)
				sub := e.Subscribe(events.Options{Buffer: 64})
				defer sub.Close()
				id := enqueue(t, e, "jmw-panic", profileArgs{})
				if tc.started {
					startEngine(t, e)
					waitRun(t, e, id, acidic.RunFailed, acidic.RunSucceeded, acidic.RunCancelled)
					// OnFinish runs in a job of its own, after the run ended.
					waitFor(t, 30*time.Second, "OnFinish", func() (bool, string) {
						mu.Lock()
						defer mu.Unlock()
						return finished > 0, fmt.Sprintf("OnFinish called %d times", finished)
					})
					// Stop waits for the attempts to publish their events.
					stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := e.Stop(stopCtx); err != nil {
						t.Fatalf("Stop: %v", err)
					}
				} else if tc.name == "drain-goexit" {
					// Drain in a goroutine of its own: the Goexit ends the
					// caller's, each Drain with the attempt it ran.
					waitFor(t, 30*time.Second, "the run to end under Drain", func() (bool, string) {
						done := make(chan struct{})
						go func() {
							defer close(done)
							_, _ = e.Queue().Drain(ctxT(t), queue.DefaultQueue, queue.DrainOptions{WithScheduled: true})
						}()
						<-done
						r := getRun(t, e, id)
						return r.State.Final(), fmt.Sprintf("run %s", r.State)
					})
					drain(t, e) // OnFinish's job
				} else {
					drain(t, e)
				}

				r := getRun(t, e, id)
				if r.State != acidic.RunFailed || !strings.Contains(r.Error, tc.reason) || r.FinishedAt == nil {
					t.Fatalf("run %s, error %q; want failed with the middleware's %q", r.State, r.Error, tc.reason)
				}
				sub.Close()
				var evs []events.Event
				for ev := range sub.C {
					evs = append(evs, ev)
				}
				// The run's events: its job failed, then was discarded, and the run
				// ended with it (the attempt never started the run: no run.started).
				finishedEvents := 0
				for _, ev := range evs {
					if ev.RunID == id && ev.Kind == events.RunFinished {
						finishedEvents++
						if ev.RunState != acidic.RunFailed {
							t.Errorf("run.finished with state %s", ev.RunState)
						}
					}
				}
				if got := describeEvents(evs, id); !strings.HasPrefix(got, "job.failed #1, ") || !strings.Contains(got, "job.discarded #2") || finishedEvents != 1 {
					t.Errorf("events %s; want job.failed #1, job.discarded #2 and one run.finished", got)
				}
				mu.Lock()
				defer mu.Unlock()
				if finished != 1 || ran != 0 {
					t.Errorf("OnFinish called %d times (want 1), the step ran %d times (want 0)", finished, ran)
				}
			})
		}
	})
}
