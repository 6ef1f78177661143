package workflow_test

import (
	"context"
	"errors"
	"strings"
	"sync"
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

// finishLog records OnFinish calls per run.
type finishLog struct {
	mu    sync.Mutex
	calls map[uuid.UUID][]acidic.Run
}

func (f *finishLog) onFinish(ctx context.Context, r *acidic.Run) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[uuid.UUID][]acidic.Run{}
	}
	f.calls[r.ID] = append(f.calls[r.ID], *r)
	return nil
}

func (f *finishLog) get(id uuid.UUID) []acidic.Run {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]acidic.Run(nil), f.calls[id]...)
}

func TestOnFinishCalledOnceForEveryEnding(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var log finishLog
		opts := fastOptions(2)
		opts.OnFinish = log.onFinish

		ok := workflow.Define("fin-ok", opts,
			noop[profileArgs, noState]("one"),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				return sc.SetResult("done")
			}))
		fail := workflow.Define("fin-fail", opts,
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				return errors.New("always fails")
			}))
		snoozing := workflow.Define("fin-cancel", opts,
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				return steps.Snooze(10 * time.Millisecond)
			}))
		stepCancel := workflow.Define("fin-stepcancel", opts,
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				return steps.Cancel(errors.New("customer gone"))
			}))
		e := newEngine(t, drv, engineConfig(3), ok, fail, snoozing, stepCancel)
		startEngine(t, e)
		ctx := ctxT(t)

		okID := enqueue(t, e, "fin-ok", profileArgs{})
		failID := enqueue(t, e, "fin-fail", profileArgs{})
		cancelID := enqueue(t, e, "fin-cancel", profileArgs{})
		stepCancelID := enqueue(t, e, "fin-stepcancel", profileArgs{})
		waitFor(t, 10*time.Second, "the snoozing run to have run", func() (bool, string) {
			r := getRun(t, e, cancelID)
			return len(r.Steps) > 0, string(r.State)
		})
		if _, err := e.Cancel(ctx, cancelID); err != nil {
			t.Fatal(err)
		}

		want := map[uuid.UUID]acidic.RunState{
			okID:         acidic.RunSucceeded,
			failID:       acidic.RunFailed,
			cancelID:     acidic.RunCancelled,
			stepCancelID: acidic.RunCancelled,
		}
		for id, state := range want {
			if r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled); r.State != state {
				t.Fatalf("run %s (%s): %s, want %s", id, r.Workflow, r.State, state)
			}
			waitFor(t, 10*time.Second, "the finish job of run "+id.String(), func() (bool, string) {
				jobs := jobsOf(t, drv, id, workflow.FinishKind)
				return len(jobs) > 0, describeJobs(jobs)
			})
			for _, j := range waitJobsFinal(t, drv, id, workflow.FinishKind) {
				if j.State != acidic.JobCompleted {
					t.Errorf("finish job %d of run %s: %s %v", j.ID, id, j.State, j.Errors)
				}
			}
		}
		// Anything late (a duplicate callback) would arrive within a few polls.
		time.Sleep(200 * time.Millisecond)

		for id, state := range want {
			calls := log.get(id)
			if len(calls) != 1 {
				t.Errorf("run %s (%s): OnFinish called %d times, want once", id, state, len(calls))
				continue
			}
			r := calls[0]
			if r.State != state || r.FinishedAt == nil {
				t.Errorf("run %s: OnFinish saw state %s (finished %v), want %s", id, r.State, r.FinishedAt, state)
			}
			if n := len(jobsOf(t, drv, id, workflow.FinishKind)); n != 1 {
				t.Errorf("run %s: %d finish jobs, want 1", id, n)
			}
		}
		if r := log.get(okID); len(r) == 1 && (string(r[0].Result) != `"done"` || len(r[0].Steps) != 2) {
			t.Errorf("succeeded run as OnFinish saw it: result %s, %d steps in its log", r[0].Result, len(r[0].Steps))
		}
		if r := log.get(failID); len(r) == 1 && !strings.Contains(r[0].Error, "always fails") {
			t.Errorf("failed run as OnFinish saw it: error %q", r[0].Error)
		}
		if r := log.get(stepCancelID); len(r) == 1 && !strings.Contains(r[0].Error, "customer gone") {
			t.Errorf("step-cancelled run as OnFinish saw it: error %q", r[0].Error)
		}

		// Cancelling a finished run again does not call OnFinish again.
		if _, err := e.Cancel(ctx, cancelID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Cancel(ctx, okID); err != nil {
			t.Fatal(err)
		}
		if n := len(jobsOf(t, drv, cancelID, workflow.FinishKind)) + len(jobsOf(t, drv, okID, workflow.FinishKind)); n != 2 {
			t.Errorf("cancelling finished runs staged finish jobs: %d in all, want 2", n)
		}
	})
}

// OnFinish is retried until it returns nil.
func TestOnFinishRetriedUntilItSucceeds(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var mu sync.Mutex
		var attempts int
		opts := fastOptions(1)
		opts.OnFinish = func(ctx context.Context, r *acidic.Run) error {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			if attempts < 3 {
				return errors.New("webhook down")
			}
			return nil
		}
		wf := workflow.Define("fin-retry", opts, noop[profileArgs, noState]("one"))
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		id := enqueue(t, e, "fin-retry", profileArgs{})
		waitRun(t, e, id, acidic.RunSucceeded)
		waitFor(t, 10*time.Second, "the finish job", func() (bool, string) {
			jobs := jobsOf(t, drv, id, workflow.FinishKind)
			return len(jobs) == 1, describeJobs(jobs)
		})
		// The finish job uses the queue's default backoff (seconds), so retry it by hand.
		waitFor(t, 20*time.Second, "the finish job to complete", func() (bool, string) {
			j := jobsOf(t, drv, id, workflow.FinishKind)[0]
			if j.State == acidic.JobRetryable {
				_, _ = e.Queue().Retry(context.Background(), j.ID)
			}
			return j.State == acidic.JobCompleted, describeJobs([]*acidic.Job{j})
		})
		mu.Lock()
		defer mu.Unlock()
		if attempts != 3 {
			t.Errorf("OnFinish called %d times, want 3 (two failures, one success)", attempts)
		}
	})
}

// An engine that does not know a run's workflow leaves its finish callback
// to one that does: it snoozes the job instead of spending its attempts.
func TestFinishCallbackOfUnknownWorkflowWaitsForAnEngineThatKnowsIt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var log finishLog
		opts := fastOptions(1)
		opts.OnFinish = log.onFinish
		wf := workflow.Define("fin-known-elsewhere", opts, noop[profileArgs, noState]("one"))
		knows := newEngine(t, drv, engineConfig(1), wf)
		ctx := ctxT(t)
		res, err := knows.Enqueue(ctx, "fin-known-elsewhere", profileArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := knows.Queue().Drain(ctx, "default", queue.DrainOptions{MaxJobs: 1}); err != nil || out.Success != 1 {
			t.Fatalf("drain of the run's job: %+v, %v", out, err)
		}
		// Its snooze must not come due again within the drain on a slow machine.
		ocfg := engineConfig(1)
		ocfg.LockedRetry = time.Hour
		other := newEngine(t, drv, ocfg)
		out, err := other.Queue().Drain(ctx, "default", queue.DrainOptions{})
		if err != nil || out.Snoozed != 1 || out.Total() != 1 {
			t.Fatalf("drain by an engine that does not know the workflow: %+v, %v; want one snooze", out, err)
		}
		jobs, err := other.Queue().List(ctx, acidic.JobFilter{Kind: workflow.FinishKind, RunID: res.Run.ID})
		if err != nil || len(jobs) != 1 || len(jobs[0].Errors) != 0 || jobs[0].MaxAttempts <= jobs[0].Attempt {
			t.Fatalf("finish job after the snooze: %+v, %v; want no error recorded and an attempt left", jobs, err)
		}
		if out, err := knows.Queue().Drain(ctx, "default", queue.DrainOptions{WithScheduled: true}); err != nil || out.Success != 1 {
			t.Fatalf("drain by the engine that knows it: %+v, %v", out, err)
		}
		if calls := log.get(res.Run.ID); len(calls) != 1 {
			t.Fatalf("OnFinish called %d times, want 1", len(calls))
		}
	})
}
