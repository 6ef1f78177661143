package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
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

// failingRun is a workflow whose only step always fails: with one attempt,
// its job is discarded and the run fails with it (jobsEnded).
func failingRun(name string) *workflow.Workflow[profileArgs, noState] {
	return workflow.Define(name, fastOptions(1),
		steps.Do("only", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
			return errors.New("always fails")
		}))
}

// collect closes sub and returns what it received; it fails the test if
// any event was dropped.
func collect(t *testing.T, sub *events.Subscription) []events.Event {
	t.Helper()
	sub.Close()
	var evs []events.Event
	for ev := range sub.C {
		evs = append(evs, ev)
	}
	if sub.Dropped() != 0 {
		t.Fatalf("%d events dropped", sub.Dropped())
	}
	return evs
}

// checkEventsDrainedAndStarted runs one run of the workflow define makes,
// under Drain and in a started engine (named prefix-drain, prefix-started),
// until it ends in state end, and checks the events of the run against
// want (as describeEvents writes them).
func checkEventsDrainedAndStarted(t *testing.T, drv storage.Driver, define func(name string) *workflow.Workflow[profileArgs, noState],
	prefix string, end acidic.RunState, want string) {
	t.Helper()
	for _, started := range []bool{false, true} {
		name := prefix + "-drain"
		if started {
			name = prefix + "-started"
		}
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, drv, engineConfig(1), define(name))
			sub := e.Subscribe(events.Options{Buffer: 256})
			defer sub.Close()
			if !started {
				id := enqueue(t, e, name, profileArgs{})
				drain(t, e)
				if got := describeEvents(collect(t, sub), id); got != want {
					t.Errorf("events:\n got %s\nwant %s", got, want)
				}
				return
			}
			startEngine(t, e)
			id := enqueue(t, e, name, profileArgs{})
			if r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled); r.State != end {
				t.Fatalf("run %s, want %s", r.State, end)
			}
			// Stop waits for every attempt to publish its events.
			stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.Stop(stopCtx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if got := describeEvents(collect(t, sub), id); got != want {
				t.Errorf("events:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// runFinished returns the run.finished events of run id.
func runFinished(evs []events.Event, id uuid.UUID) []events.Event {
	var out []events.Event
	for _, ev := range evs {
		if ev.RunID == id && ev.Kind == events.RunFinished {
			out = append(out, ev)
		}
	}
	return out
}

// A run that ends with its job (the job's last attempt failed, under Drain
// and in a started engine; the rescue of its last attempt) publishes one
// run.finished, after the event of the job that ended it. On both drivers.
func TestRunFinishedFollowsTheJobThatEndedIt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		checkEventsDrainedAndStarted(t, drv, failingRun, "rf", acidic.RunFailed,
			"run.started #1, step.failed only #1, job.discarded #1, run.finished failed #1")
		t.Run("rescue", func(t *testing.T) {
			cfg := engineConfig(1)
			cfg.Queue.RescueAfter = time.Minute
			e := newEngine(t, drv, cfg, failingRun("rf-rescue"))
			sub := e.Subscribe(events.Options{Buffer: 256})
			defer sub.Close()
			id := enqueue(t, e, "rf-rescue", profileArgs{})
			// A worker claims the job's last attempt and dies.
			claimed, err := drv.JobFetch(ctxT(t), storage.JobFetchParams{Queue: queue.DefaultQueue, Max: 1, WorkerID: "dead-worker"})
			if err != nil || len(claimed) != 1 || claimed[0].Job.RunID != id {
				t.Fatalf("JobFetch = %v, %v; want the run's job", claimed, err)
			}
			ageHeartbeat(t, drv, claimed[0].Job.ID)
			res := e.Queue().Maintain(ctxT(t))
			if len(res.Rescued) != 1 || res.Rescued[0].State != acidic.JobDiscarded {
				t.Fatalf("rescued %v, want the run's job discarded", res.Rescued)
			}
			want := "job.rescued #1, run.finished failed #1"
			if got := describeEvents(collect(t, sub), id); got != want {
				t.Errorf("events:\n got %s\nwant %s", got, want)
			}
		})
	})
}

// The transaction that ends a run's job (and the run with it) fails after
// jobsEnded ran, once, and is run again by the driver, which commits it:
// subscribers see one run.finished, with the final state, after the job's
// job.discarded. The failure is a serialization failure at COMMIT (a
// deferred trigger, PostgreSQL only: SQLite cannot fail its COMMIT from
// SQL), or one from a later write of the transaction (the engine's
// Config.Queue.EndedFunc, called after jobsEnded; both drivers).
func TestRunFinishedOnceWhenTheJobsEndIsRetried(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for _, tc := range []string{"commit", "later-write"} {
			t.Run(tc, func(t *testing.T) {
				name := "rf-retried-" + tc
				cfg := engineConfig(1)
				var failed atomic.Int32
				switch tc {
				case "commit":
					if testdb.IsSQLite(drv) {
						t.Skip("SQLite: no way to fail a COMMIT from SQL")
					}
					// The first transaction that fails a run of this workflow
					// fails at COMMIT with 40001; a sequence (not rolled back)
					// counts the tries.
					seq, fn := table(drv, "rf_tries"), table(drv, "rf_fail_once")
					execSQL(t, drv, "CREATE SEQUENCE "+seq)
					execSQL(t, drv, "CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "+
						"IF nextval('"+seq+"') = 1 THEN RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001'; END IF; "+
						"RETURN NULL; END $$")
					execSQL(t, drv, "CREATE CONSTRAINT TRIGGER rf_fail_once AFTER UPDATE ON "+table(drv, "runs")+
						" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (OLD.state <> 'failed' AND NEW.state = 'failed' AND NEW.workflow = '"+name+"')"+
						" EXECUTE FUNCTION "+fn+"()")
				case "later-write":
					cfg.Queue.EndedFunc = func(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error {
						if failed.Add(1) == 1 {
							return fmt.Errorf("a later write: %w", acidic.ErrSerialization)
						}
						return nil
					}
				}
				e := newEngine(t, drv, cfg, failingRun(name))
				sub := e.Subscribe(events.Options{Buffer: 256})
				defer sub.Close()
				id := enqueue(t, e, name, profileArgs{})
				drain(t, e)
				if r := getRun(t, e, id); r.State != acidic.RunFailed {
					t.Fatalf("run %s, want failed", r.State)
				}
				switch {
				case tc == "commit":
					if tries := testdb.QueryInt(t, drv, "SELECT last_value FROM "+table(drv, "rf_tries")); tries != 2 {
						t.Fatalf("the transaction that failed the run reached its COMMIT %d times, want 2 (one failed, one committed)", tries)
					}
				case failed.Load() != 2:
					t.Fatalf("EndedFunc ran %d times, want 2 (a failed try, then the one that committed)", failed.Load())
				}
				evs := collect(t, sub)
				want := "run.started #1, step.failed only #1, job.discarded #1, run.finished failed #1"
				if got := describeEvents(evs, id); got != want {
					t.Errorf("events:\n got %s\nwant %s", got, want)
				}
				if fin := runFinished(evs, id); len(fin) != 1 || fin[0].Err == nil || !strings.Contains(fin[0].Err.Error(), "always fails") {
					t.Errorf("run.finished events %+v, want one, with the step's error", fin)
				}
			})
		}
	})
}

// The transaction that ends a run's job rolls back for good after
// jobsEnded ran (a later write fails): no run.finished is published, and
// the run has not ended. On both drivers.
func TestNoRunFinishedWhenTheJobsEndRollsBack(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		errLater := errors.New("a later write failed")
		cfg := engineConfig(1)
		var called atomic.Int32
		cfg.Queue.EndedFunc = func(ctx context.Context, tx storage.Tx, jobs []*acidic.Job) error {
			called.Add(1)
			return errLater
		}
		e := newEngine(t, drv, cfg, failingRun("rf-rollback"))
		sub := e.Subscribe(events.Options{Buffer: 256})
		defer sub.Close()
		id := enqueue(t, e, "rf-rollback", profileArgs{})
		_, err := e.Queue().Drain(ctxT(t), queue.DefaultQueue, queue.DrainOptions{WithScheduled: true})
		if !errors.Is(err, errLater) || called.Load() != 1 {
			t.Fatalf("Drain = %v (EndedFunc called %d times), want the later write's error", err, called.Load())
		}
		if r := getRun(t, e, id); r.State.Final() {
			t.Fatalf("run %s after its job's end rolled back, want it not ended", r.State)
		}
		evs := collect(t, sub)
		if fin := runFinished(evs, id); len(fin) != 0 {
			t.Errorf("events %s: run.finished published for a transaction that rolled back", describeEvents(evs, id))
		}
	})
}

// A step that cancels the job of another run through the engine's queue,
// in its own transaction, ends that run with it: the run's run.finished is
// published once the step committed, once, although the step's transaction
// ran twice (a serialization failure after the cancel). On both drivers.
func TestRunFinishedOfAJobCancelledInAStepWaitsForItsCommit(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var victim atomic.Int64 // the job the step cancels
		var e *workflow.Engine
		tries := 0
		canceller := workflow.Define("rf-canceller", fastOptions(1),
			steps.Do("cancel", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				if _, err := e.Queue().CancelTx(ctx, sc.Tx(), victim.Load()); err != nil {
					return err
				}
				if tries++; tries == 1 {
					return fmt.Errorf("after the cancel: %w", acidic.ErrSerialization)
				}
				return nil
			}))
		e = newEngine(t, drv, engineConfig(1), canceller, workflow.Define("rf-victim", fastOptions(1), noop[profileArgs, noState]("never")))
		sub := e.Subscribe(events.Options{Buffer: 256})
		defer sub.Close()
		cid := enqueue(t, e, "rf-canceller", profileArgs{})
		vid := enqueue(t, e, "rf-victim", profileArgs{})
		victim.Store(jobsOf(t, drv, vid, "rf-victim")[0].ID)
		drain(t, e)
		if r := getRun(t, e, vid); r.State != acidic.RunCancelled {
			t.Fatalf("the victim run is %s, want cancelled", r.State)
		}
		evs := collect(t, sub)
		committed, finished := -1, []int{}
		for i, ev := range evs {
			switch {
			case ev.RunID == cid && ev.Kind == events.StepCommitted:
				committed = i
			case ev.RunID == vid && ev.Kind == events.RunFinished:
				finished = append(finished, i)
			}
		}
		if tries != 2 || len(finished) != 1 || finished[0] < committed || committed < 0 {
			t.Errorf("the step ran %d times; canceller %s; victim %s: want one run.finished of the victim, after the step committed",
				tries, describeEvents(evs, cid), describeEvents(evs, vid))
		}
	})
}

// A run its own step ended (steps.Cancel) publishes run.finished after its
// job's job.cancelled, as a run that ends with its job does: under Drain
// and in a started engine. On both drivers.
func TestRunFinishedFollowsTheJobItsStepEnded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cancelling := func(name string) *workflow.Workflow[profileArgs, noState] {
			return workflow.Define(name, fastOptions(3),
				steps.Do("stop", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
					return steps.Cancel(errors.New("out of stock"))
				}))
		}
		checkEventsDrainedAndStarted(t, drv, cancelling, "rs", acidic.RunCancelled,
			"run.started #1, step.failed stop #1, job.cancelled #1, run.finished cancelled")
	})
}
