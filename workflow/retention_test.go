package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// backdate moves a run's creation and finish into the past by age (a run
// finishes after it is created, and pruning relies on that).
func backdate(t *testing.T, drv storage.Driver, id uuid.UUID, age time.Duration) {
	t.Helper()
	if testdb.IsSQLite(drv) { // times are microseconds there
		execSQL(t, drv, "UPDATE "+table(drv, "runs")+" SET created_at = created_at - $2, finished_at = finished_at - $2 WHERE id = $1",
			id, age.Microseconds())
		return
	}
	execSQL(t, drv, "UPDATE "+table(drv, "runs")+
		" SET created_at = created_at - $2::bigint * interval '1 microsecond', finished_at = finished_at - $2::bigint * interval '1 microsecond' WHERE id = $1",
		id, age.Microseconds())
}

// runExists reports whether the run is stored.
func runExists(t *testing.T, e *workflow.Engine, id uuid.UUID) bool {
	t.Helper()
	_, err := e.Get(context.Background(), id)
	if err != nil && !errors.Is(err, acidic.ErrNotFound) {
		t.Fatalf("Get %s: %v", id, err)
	}
	return err == nil
}

// runRecord is what a deletion must remove: the run, its step log and its
// jobs, as stored.
type runRecord struct {
	run  *acidic.Run
	jobs []*acidic.Job
}

func record(t *testing.T, e *workflow.Engine, id uuid.UUID) runRecord {
	t.Helper()
	return runRecord{run: getRun(t, e, id), jobs: jobsOf(t, e.Driver(), id, "")}
}

// wantGone checks that the run, its step log and its jobs are gone.
func wantGone(t *testing.T, e *workflow.Engine, what string, rec runRecord) {
	t.Helper()
	ctx := context.Background()
	if runExists(t, e, rec.run.ID) {
		t.Errorf("%s: run %s is still there", what, rec.run.ID)
	}
	if steps, err := e.Driver().RunSteps(ctx, storage.RunStepsParams{ID: rec.run.ID}); err != nil || len(steps) != 0 {
		t.Errorf("%s: the step log of run %s is still there: %d entries, %v", what, rec.run.ID, len(steps), err)
	}
	for _, j := range rec.jobs {
		if _, err := e.Driver().JobGet(ctx, storage.JobGetParams{ID: j.ID}); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("%s: job %d (%s) of run %s is still there (%v)", what, j.ID, j.Kind, rec.run.ID, err)
		}
	}
}

// wantUnchanged checks that the run, its step log and its jobs are as
// recorded.
func wantUnchanged(t *testing.T, e *workflow.Engine, what string, rec runRecord) {
	t.Helper()
	now := record(t, e, rec.run.ID)
	if !now.run.UpdatedAt.Equal(rec.run.UpdatedAt) || now.run.State != rec.run.State || len(now.run.Steps) != len(rec.run.Steps) {
		t.Errorf("%s: run changed: %s with %d steps (updated %v), was %s with %d steps (updated %v)", what,
			now.run.State, len(now.run.Steps), now.run.UpdatedAt, rec.run.State, len(rec.run.Steps), rec.run.UpdatedAt)
	}
	if len(now.jobs) != len(rec.jobs) {
		t.Errorf("%s: %d jobs, had %d", what, len(now.jobs), len(rec.jobs))
	}
	for i := range min(len(now.jobs), len(rec.jobs)) {
		if now.jobs[i].ID != rec.jobs[i].ID || now.jobs[i].State != rec.jobs[i].State {
			t.Errorf("%s: job %d is %s, was %s", what, now.jobs[i].ID, now.jobs[i].State, rec.jobs[i].State)
		}
	}
}

func drainQueue(t *testing.T, e *workflow.Engine, q string, withScheduled bool) {
	t.Helper()
	if _, err := e.Queue().Drain(ctxT(t), q, queue.DrainOptions{WithScheduled: withScheduled}); err != nil {
		t.Fatalf("Drain(%s): %v", q, err)
	}
}

// TestRetentionPrunesRunsByState: a maintenance pass prunes each final
// state of runs by its own retention, with the step logs and the jobs of the
// runs it deletes; a state kept for ever, a kept workflow and unfinished
// runs (pending, halted) stay.
func TestRetentionPrunesRunsByState(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ok := workflow.Define("ok", workflow.Options{}, noop[profileArgs, noState]("one"), noop[profileArgs, noState]("two"))
		bad := workflow.Define("bad", workflow.Options{MaxAttempts: 1},
			steps.Do("one", func(context.Context, *steps.Context[profileArgs, noState]) error { return errors.New("card declined") }))
		halts := workflow.Define("halts", workflow.Options{},
			steps.Do("one", func(context.Context, *steps.Context[profileArgs, noState]) error { return steps.Halt() }),
			noop[profileArgs, noState]("two"))
		audited := workflow.Define("audited", workflow.Options{}, noop[profileArgs, noState]("one"))
		cfg := engineConfig(1)
		// Jobs are kept longer than runs here, so that the runs' deletion is
		// what removes them.
		cfg.Queue.Retention = queue.Retention{Completed: 1000 * time.Hour, Cancelled: 1000 * time.Hour, Discarded: 1000 * time.Hour}
		cfg.Retention = workflow.Retention{
			Succeeded:     time.Hour,
			Failed:        3 * time.Hour,
			Cancelled:     queue.KeepForever,
			KeepWorkflows: []string{"audited"},
		}
		e := newEngine(t, drv, cfg, ok, bad, halts, audited)
		ctx := ctxT(t)
		okOld, okNew := enqueue(t, e, "ok", profileArgs{}), enqueue(t, e, "ok", profileArgs{})
		badMid, badOld := enqueue(t, e, "bad", profileArgs{}), enqueue(t, e, "bad", profileArgs{})
		halted := enqueue(t, e, "halts", profileArgs{})
		kept := enqueue(t, e, "audited", profileArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		parked, err := e.Enqueue(ctx, "ok", profileArgs{}, workflow.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		cancelled, err := e.Enqueue(ctx, "ok", profileArgs{}, workflow.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Cancel(ctx, cancelled.Run.ID); err != nil {
			t.Fatal(err)
		}
		for id, age := range map[uuid.UUID]time.Duration{
			okOld: 2 * time.Hour, okNew: 30 * time.Minute, badMid: 2 * time.Hour, badOld: 4 * time.Hour,
			halted: 1000 * time.Hour, kept: 1000 * time.Hour, parked.Run.ID: 1000 * time.Hour, cancelled.Run.ID: 1000 * time.Hour,
		} {
			backdate(t, drv, id, age)
		}
		if r := getRun(t, e, halted); r.State != acidic.RunHalted {
			t.Fatalf("set-up: run halted is %s", r.State)
		}
		gone := map[string]runRecord{"succeeded 2h ago": record(t, e, okOld), "failed 4h ago": record(t, e, badOld)}
		stay := map[string]runRecord{
			"succeeded 30m ago": record(t, e, okNew), "failed 2h ago": record(t, e, badMid),
			"halted": record(t, e, halted), "of a kept workflow": record(t, e, kept),
			"pending": record(t, e, parked.Run.ID), "cancelled (kept for ever)": record(t, e, cancelled.Run.ID),
		}
		for what, rec := range gone {
			if len(rec.jobs) == 0 || len(rec.run.Steps) == 0 {
				t.Fatalf("set-up: the run %s has %d jobs and %d steps", what, len(rec.jobs), len(rec.run.Steps))
			}
		}

		e.Queue().Maintain(ctx)
		for what, rec := range gone {
			wantGone(t, e, "the run "+what, rec)
		}
		for what, rec := range stay {
			wantUnchanged(t, e, "the run "+what, rec)
		}

		// The defaults: a week for succeeded and cancelled runs, 30 days for
		// failed ones.
		defaults := newEngine(t, drv, engineConfig(1))
		week := 7 * 24 * time.Hour
		backdate(t, drv, okNew, week)             // now a week and 30m old
		backdate(t, drv, badMid, 29*24*time.Hour) // 29 days and 2h: kept
		if _, err := defaults.PruneRuns(ctx); err != nil {
			t.Fatal(err)
		}
		wantGone(t, e, "a run succeeded a week ago, with the defaults", stay["succeeded 30m ago"])
		wantGone(t, e, "a run cancelled 1000h ago, with the defaults", stay["cancelled (kept for ever)"])
		wantGone(t, e, "a run of a workflow no longer kept", stay["of a kept workflow"])
		wantUnchanged(t, e, "a run failed 29 days ago, with the defaults", stay["failed 2h ago"])
		for _, what := range []string{"halted", "pending"} {
			wantUnchanged(t, e, "the run "+what+", with the defaults", stay[what])
		}
	})
}

// TestRetentionKeepsWhatIsStillNeeded: pruning never takes a child run
// that its parent may still read (the parent's next step reads every
// child's result), nor a run whose OnFinish callback has not run yet (the
// callback gets the run).
func TestRetentionKeepsWhatIsStillNeeded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		child := workflow.Define("ret-child", workflow.Options{},
			steps.Do("work", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
				return sc.SetResult(sc.Args.N * 10)
			}))
		parent := workflow.Define("ret-parent", workflow.Options{},
			steps.AwaitRuns[childArgs, parentState]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "ret-child", Args: childArgs{N: 1}, Queue: "fast"},
				steps.RunRequest{Workflow: "ret-child", Args: childArgs{N: 2}, Queue: "slow"},
			),
			steps.Do("gather", func(ctx context.Context, sc *steps.Context[childArgs, parentState]) error {
				children, err := sc.Children(ctx, "fan-out")
				if err != nil {
					return err
				}
				sum := 0
				for _, c := range children {
					var v int
					if _, err := fmt.Sscan(string(c.Result), &v); err != nil {
						return err
					}
					sum += v
				}
				return sc.SetResult(sum)
			}))
		var calls atomic.Int32
		var seen sync.Map
		opts := fastOptions(3)
		opts.OnFinish = func(ctx context.Context, r *acidic.Run) error {
			seen.Store(r.ID, r.State)
			if calls.Add(1) == 1 {
				return errors.New("mail server down")
			}
			return nil
		}
		callback := workflow.Define("ret-callback", opts, noop[profileArgs, noState]("one"))
		cfg := engineConfig(1)
		cfg.Retention = workflow.Retention{Succeeded: time.Nanosecond}
		e := newEngine(t, drv, cfg, child, parent, callback)
		ctx := ctxT(t)

		// The parent awaits two children; the fast one has finished.
		p := enqueue(t, e, "ret-parent", childArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		drainQueue(t, e, "fast", false)
		if r := getRun(t, e, p); r.State != acidic.RunAwaiting || r.Awaiting != 1 {
			t.Fatalf("set-up: parent is %s awaiting %d", r.State, r.Awaiting)
		}
		kids, err := e.List(ctx, acidic.RunFilter{ParentRunID: p})
		if err != nil || len(kids) != 2 {
			t.Fatalf("children: %v, %v", kids, err)
		}
		e.Queue().Maintain(ctx)
		for _, k := range kids {
			if !runExists(t, e, k.ID) {
				t.Fatalf("child %s (%s) of an awaiting parent was pruned", k.ID, k.State)
			}
		}
		drainQueue(t, e, "slow", false)
		drainQueue(t, e, queue.DefaultQueue, false)
		r := getRun(t, e, p)
		if r.State != acidic.RunSucceeded || string(r.Result) != "30" {
			t.Fatalf("parent %s with result %s (%q), want succeeded with 30: a child's result was lost", r.State, r.Result, r.Error)
		}
		// The parent finished: it is pruned, its children are detached, then
		// pruned by their own retention.
		e.Queue().Maintain(ctx)
		if runExists(t, e, p) {
			t.Error("the succeeded parent was not pruned")
		}
		for _, k := range kids {
			if c := getRun(t, e, k.ID); c.ParentRunID != uuid.Nil {
				t.Errorf("child %s still names its pruned parent", k.ID)
			}
		}
		e.Queue().Maintain(ctx)
		for _, k := range kids {
			if runExists(t, e, k.ID) {
				t.Errorf("child %s was not pruned once its parent had gone", k.ID)
			}
		}

		// A run whose callback failed once: kept until the callback has run.
		cb := enqueue(t, e, "ret-callback", profileArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		if calls.Load() != 1 {
			t.Fatalf("set-up: the callback ran %d times", calls.Load())
		}
		e.Queue().Maintain(ctx)
		if !runExists(t, e, cb) {
			t.Fatal("a run whose OnFinish callback has not succeeded yet was pruned")
		}
		drainQueue(t, e, queue.DefaultQueue, true)
		if calls.Load() != 2 {
			t.Fatalf("the callback ran %d times, want 2", calls.Load())
		}
		if s, _ := seen.Load(cb); s != acidic.RunSucceeded {
			t.Errorf("the callback saw the run %v", s)
		}
		e.Queue().Maintain(ctx)
		if runExists(t, e, cb) {
			t.Error("the run was not pruned once its callback had run")
		}
	})
}

// TestDeleteRun deletes a finished run with its step log and jobs; a run
// that has not finished, or whose callback has not run, or a child whose
// parent awaits, is ErrNotFinished and nothing changes; an unknown run is
// ErrNotFound.
func TestDeleteRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ok := workflow.Define("del-ok", workflow.Options{}, noop[profileArgs, noState]("one"), noop[profileArgs, noState]("two"))
		halts := workflow.Define("del-halts", workflow.Options{},
			steps.Do("one", func(context.Context, *steps.Context[profileArgs, noState]) error { return steps.Halt() }),
			noop[profileArgs, noState]("two"))
		opts := fastOptions(3)
		opts.OnFinish = func(context.Context, *acidic.Run) error { return errors.New("not yet") }
		withCallback := workflow.Define("del-callback", opts, noop[profileArgs, noState]("one"))
		child := workflow.Define("del-child", workflow.Options{}, noop[childArgs, struct{}]("work"))
		parent := workflow.Define("del-parent", workflow.Options{},
			steps.AwaitRuns[childArgs, parentState]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "del-child", Args: childArgs{N: 1}, Queue: "fast"},
				steps.RunRequest{Workflow: "del-child", Args: childArgs{N: 2}, Queue: "slow"},
			),
			noop[childArgs, parentState]("gather"))
		e := newEngine(t, drv, engineConfig(1), ok, halts, withCallback, child, parent)
		ctx := ctxT(t)
		done := enqueue(t, e, "del-ok", profileArgs{})
		halted := enqueue(t, e, "del-halts", profileArgs{})
		cb := enqueue(t, e, "del-callback", profileArgs{})
		p := enqueue(t, e, "del-parent", childArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		drainQueue(t, e, "fast", false)
		pending, err := e.Enqueue(ctx, "del-ok", profileArgs{}, workflow.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		kids, err := e.List(ctx, acidic.RunFilter{ParentRunID: p, States: []acidic.RunState{acidic.RunSucceeded}})
		if err != nil || len(kids) != 1 {
			t.Fatalf("set-up: finished children %v, %v", kids, err)
		}

		refused := map[string]struct {
			id     uuid.UUID
			reason string
		}{
			"a pending run":                          {pending.Run.ID, "it is pending"},
			"a halted run":                           {halted, "it is halted"},
			"a run whose callback has not run":       {cb, "acidic.finish"},
			"an awaiting parent":                     {p, "it is awaiting"},
			"a finished child of an awaiting parent": {kids[0].ID, "parent run"},
		}
		for what, c := range refused {
			before := record(t, e, c.id)
			err := e.DeleteRun(ctx, c.id)
			if !errors.Is(err, workflow.ErrNotFinished) || !errors.Is(err, acidic.ErrInUse) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("DeleteRun of %s: %v, want ErrNotFinished saying %q", what, err, c.reason)
			}
			wantUnchanged(t, e, "after DeleteRun of "+what, before)
		}

		rec := record(t, e, done)
		if err := e.DeleteRun(ctx, done); err != nil {
			t.Fatalf("DeleteRun of a succeeded run: %v", err)
		}
		wantGone(t, e, "after DeleteRun", rec)
		if err := e.DeleteRun(ctx, done); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("DeleteRun of a deleted run: %v, want ErrNotFound", err)
		}
		if err := e.DeleteRun(ctx, uuid.New()); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("DeleteRun of an unknown run: %v, want ErrNotFound", err)
		}
		// Its idempotency key is free again.
		again, err := e.Enqueue(ctx, "del-ok", profileArgs{}, workflow.EnqueueOptions{Key: strings.TrimPrefix(rec.run.IdempotencyKey, "del-ok:")})
		if err != nil || again.Duplicate || again.Run.ID == done {
			t.Errorf("enqueue with the deleted run's key: %+v, %v; want a new run", again, err)
		}
	})
}

// TestDeleteRunTx deletes a run only if the caller's transaction commits.
func TestDeleteRunTx(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ok := workflow.Define("deltx", workflow.Options{}, noop[profileArgs, noState]("one"))
		e := newEngine(t, drv, engineConfig(1), ok)
		ctx := ctxT(t)
		id := enqueue(t, e, "deltx", profileArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		rec := record(t, e, id)
		errRollback := errors.New("roll back")
		err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			if err := e.DeleteRunTx(ctx, tx, id); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx: %v", err)
		}
		wantUnchanged(t, e, "after a rolled back DeleteRunTx", rec)
		err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			return e.DeleteRunTx(ctx, tx, id)
		})
		if err != nil {
			t.Fatalf("DeleteRunTx: %v", err)
		}
		wantGone(t, e, "after DeleteRunTx", rec)
	})
}

// TestDeleteRunFromFinishCallback: a run's OnFinish callback deletes its own
// run, as AcidicJob's README does, although its own job is still running;
// the same call from another context is refused while the callback has not
// run. A callback that fails after deleting its run is not called again:
// its retry completes.
func TestDeleteRunFromFinishCallback(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var e *workflow.Engine
		var mu sync.Mutex
		calls := map[uuid.UUID]int{}
		outside := map[uuid.UUID]error{}
		deleting := func(failAfter bool) func(ctx context.Context, r *acidic.Run) error {
			return func(ctx context.Context, r *acidic.Run) error {
				mu.Lock()
				calls[r.ID]++
				mu.Unlock()
				errOutside := e.DeleteRun(context.Background(), r.ID)
				mu.Lock()
				outside[r.ID] = errOutside
				mu.Unlock()
				if err := e.DeleteRun(ctx, r.ID); err != nil {
					return err
				}
				if failAfter {
					return errors.New("failed after deleting the run")
				}
				return nil
			}
		}
		opts := fastOptions(3)
		opts.OnFinish = deleting(false)
		clean := workflow.Define("self-delete", opts, noop[profileArgs, noState]("one"), noop[profileArgs, noState]("two"))
		opts.OnFinish = deleting(true)
		failing := workflow.Define("self-delete-fail", opts, noop[profileArgs, noState]("one"))
		e = newEngine(t, drv, engineConfig(1), clean, failing)
		ctx := ctxT(t)

		for _, name := range []string{"self-delete", "self-delete-fail"} {
			id := enqueue(t, e, name, profileArgs{})
			drainQueue(t, e, queue.DefaultQueue, true)
			mu.Lock()
			n, errOutside := calls[id], outside[id]
			mu.Unlock()
			if n != 1 {
				t.Errorf("%s: the callback ran %d times, want once", name, n)
			}
			if !errors.Is(errOutside, workflow.ErrNotFinished) {
				t.Errorf("%s: DeleteRun from another context while the callback ran: %v, want ErrNotFinished", name, errOutside)
			}
			if runExists(t, e, id) {
				t.Errorf("%s: the run is still there", name)
			}
			if steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: id}); err != nil || len(steps) != 0 {
				t.Errorf("%s: its step log: %d entries, %v", name, len(steps), err)
			}
			finish, err := e.Queue().List(ctx, acidic.JobFilter{Kind: workflow.FinishKind})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, j := range finish {
				if !strings.Contains(string(j.Args), id.String()) {
					continue
				}
				found = true
				if j.State != acidic.JobCompleted || j.RunID != uuid.Nil {
					t.Errorf("%s: the callback's job is %s of run %s, want completed, detached", name, j.State, j.RunID)
				}
			}
			if !found {
				t.Errorf("%s: no callback job", name)
			}
		}
	})
}

// TestCancelManyRuns cancels the unfinished runs a filter matches, each as
// Cancel does: its jobs cancelled, its children cancelled, its OnFinish run
// once; finished runs and runs outside the filter are left alone, and an
// empty filter is refused without changing anything.
func TestCancelManyRuns(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var log finishLog
		opts := workflow.Options{Queue: "parked", OnFinish: log.onFinish}
		slow := workflow.Define("slow", opts, noop[childArgs, struct{}]("one"))
		other := workflow.Define("other", workflow.Options{Queue: "parked"}, noop[childArgs, struct{}]("one"))
		popts := workflow.Options{OnFinish: log.onFinish}
		fanout := workflow.Define("fanout", popts,
			steps.AwaitRuns[childArgs, parentState]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "slow", Args: childArgs{N: 1}},
				steps.RunRequest{Workflow: "slow", Args: childArgs{N: 2}},
			),
			noop[childArgs, parentState]("gather"))
		e := newEngine(t, drv, engineConfig(1), slow, other, fanout)
		ctx := ctxT(t)
		var slowRuns []uuid.UUID
		for i := range 3 {
			slowRuns = append(slowRuns, enqueue(t, e, "slow", childArgs{N: 10 + i}))
		}
		finished, err := e.Enqueue(ctx, "slow", childArgs{N: 99}, workflow.EnqueueOptions{Queue: queue.DefaultQueue})
		if err != nil {
			t.Fatal(err)
		}
		otherRun := enqueue(t, e, "other", childArgs{})
		parent := enqueue(t, e, "fanout", childArgs{})
		drainQueue(t, e, queue.DefaultQueue, false)
		if r := getRun(t, e, finished.Run.ID); r.State != acidic.RunSucceeded {
			t.Fatalf("set-up: run finished is %s", r.State)
		}
		if r := getRun(t, e, parent); r.State != acidic.RunAwaiting {
			t.Fatalf("set-up: parent is %s", r.State)
		}
		children, err := e.List(ctx, acidic.RunFilter{ParentRunID: parent})
		if err != nil || len(children) != 2 {
			t.Fatalf("children: %v, %v", children, err)
		}

		before := record(t, e, slowRuns[0])
		if got, err := e.CancelMany(ctx, acidic.RunFilter{}); !errors.Is(err, workflow.ErrInvalid) || len(got) != 0 {
			t.Errorf("CancelMany without a filter = %d runs, %v; want ErrInvalid", len(got), err)
		}
		wantUnchanged(t, e, "after a refused CancelMany", before)

		// The parent: it and its children are cancelled.
		got, err := e.CancelMany(ctx, acidic.RunFilter{Workflow: "fanout"})
		if err != nil || len(got) != 1 || got[0].ID != parent || got[0].State != acidic.RunCancelled {
			t.Fatalf("CancelMany(workflow fanout) = %v, %v; want the parent cancelled", got, err)
		}
		// The remaining slow runs; the cancelled children and the finished run
		// are skipped.
		got, err = e.CancelMany(ctx, acidic.RunFilter{Workflow: "slow"})
		if err != nil {
			t.Fatalf("CancelMany(workflow slow): %v", err)
		}
		var ids []uuid.UUID
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		want := slices.Clone(slowRuns)
		slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		if !slices.Equal(ids, want) {
			t.Errorf("CancelMany(workflow slow) cancelled %v, want %v", ids, want)
		}
		drainQueue(t, e, "parked", false)
		drainQueue(t, e, queue.DefaultQueue, false)
		cancelled := append(slices.Clone(slowRuns), parent, children[0].ID, children[1].ID)
		for _, id := range cancelled {
			r := getRun(t, e, id)
			if r.State != acidic.RunCancelled || r.SettledAt == nil {
				t.Errorf("run %s (%s) is %s, settled %v; want cancelled and settled", id, r.Workflow, r.State, r.SettledAt)
			}
			for _, j := range jobsOf(t, drv, id, r.Workflow) {
				if j.State != acidic.JobCancelled && j.State != acidic.JobCompleted {
					t.Errorf("job %d of cancelled run %s is %s", j.ID, id, j.State)
				}
			}
			if live := liveJobs(t, drv, id); len(live) != 0 {
				t.Errorf("cancelled run %s still has jobs to run: %s", id, describeJobs(live))
			}
			if n := len(log.get(id)); n != 1 {
				t.Errorf("run %s: OnFinish ran %d times, want once", id, n)
			}
		}
		for _, id := range children {
			if r := getRun(t, e, id.ID); r.Error != "parent run cancelled" {
				t.Errorf("child %s error %q, want %q", id.ID, r.Error, "parent run cancelled")
			}
		}
		if r := getRun(t, e, finished.Run.ID); r.State != acidic.RunSucceeded {
			t.Errorf("the finished run is %s", r.State)
		}
		if r := getRun(t, e, otherRun); r.State == acidic.RunCancelled {
			t.Errorf("the run outside the filter was cancelled")
		}
	})
}

// TestCancelManyJobsEndsTheirRuns: cancelling by filter the jobs that carry
// runs, through the engine's queue, ends each run with its job, as an
// operator's cancel of one job does: cancelled, settled, OnFinish once.
func TestCancelManyJobsEndsTheirRuns(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var log finishLog
		slow := workflow.Define("jslow", workflow.Options{Queue: "parked", OnFinish: log.onFinish}, noop[childArgs, struct{}]("one"))
		e := newEngine(t, drv, engineConfig(1), slow)
		ctx := ctxT(t)
		a, b := enqueue(t, e, "jslow", childArgs{N: 1}), enqueue(t, e, "jslow", childArgs{N: 2})
		plain, err := e.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.Queue().CancelMany(ctx, acidic.JobFilter{Queue: "parked", Kind: "jslow"})
		if err != nil || len(got) != 2 {
			t.Fatalf("CancelMany(kind jslow) = %v, %v; want 2 jobs", got, err)
		}
		drainQueue(t, e, "parked", false)
		for _, id := range []uuid.UUID{a, b} {
			r := getRun(t, e, id)
			if r.State != acidic.RunCancelled || r.SettledAt == nil || !strings.Contains(r.Error, "cancelled by an operator") {
				t.Errorf("run %s is %s (%q), settled %v; want cancelled by an operator, settled", id, r.State, r.Error, r.SettledAt)
			}
			if n := len(log.get(id)); n != 1 {
				t.Errorf("run %s: OnFinish ran %d times, want once", id, n)
			}
		}
		if j, _ := e.Queue().Get(ctx, plain.ID); j.State == acidic.JobCancelled {
			t.Error("the plain job outside the filter was cancelled")
		}
	})
}

// TestRetentionConfigRefusesBadValues: a negative retention other than
// queue.KeepForever and a kept workflow that is no valid name are
// ErrInvalid at NewEngine.
func TestRetentionConfigRefusesBadValues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		for what, r := range map[string]workflow.Retention{
			"a negative succeeded retention": {Succeeded: -time.Second},
			"a negative failed retention":    {Failed: -2},
			"a negative cancelled retention": {Cancelled: -time.Hour},
			"an empty kept workflow":         {KeepWorkflows: []string{""}},
		} {
			cfg := engineConfig(1)
			cfg.Retention = r
			if _, err := workflow.NewEngine(drv, cfg); !errors.Is(err, workflow.ErrInvalid) {
				t.Errorf("NewEngine with %s: %v, want ErrInvalid", what, err)
			}
		}
		cfg := engineConfig(1)
		cfg.Retention = workflow.Retention{Succeeded: queue.KeepForever, Failed: queue.KeepForever, Cancelled: queue.KeepForever}
		e, err := workflow.NewEngine(drv, cfg)
		if err != nil {
			t.Fatalf("NewEngine keeping every state for ever: %v", err)
		}
		if n, err := e.PruneRuns(ctxT(t)); n != 0 || err != nil {
			t.Errorf("PruneRuns keeping every state for ever = %d, %v", n, err)
		}
	})
}
