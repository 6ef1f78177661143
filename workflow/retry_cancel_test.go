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
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// A run that failed for good is retried from its recovery point: committed
// steps do not run again.
func TestRetryResumesFailedRunAtRecoveryPoint(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var calls counter
		var fixed atomic.Bool
		wf := workflow.Define("fragile", fastOptions(2),
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("one")
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "one", 0)
			}),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("two")
				if !fixed.Load() {
					return errors.New("upstream is down")
				}
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "two", 0)
			}),
			steps.Do("three", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("three")
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "three", 0)
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "fragile", profileArgs{})

		r := waitRun(t, e, id, acidic.RunFailed, acidic.RunSucceeded)
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, "upstream is down") || r.RecoveryPoint != "two" {
			t.Fatalf("run %s at %q with error %q; want failed at two with the step's error", r.State, r.RecoveryPoint, r.Error)
		}
		if r.FinishedAt == nil {
			t.Errorf("failed run has no FinishedAt")
		}
		if s := stepLog(t, r, "two"); s.State != acidic.StepFailed || s.Executions != 2 {
			t.Errorf("step two log %s with %d executions, want failed twice", s.State, s.Executions)
		}
		// Wait for the failed job to be written off before retrying.
		for _, j := range waitJobsFinal(t, drv, id, "fragile") {
			if j.State != acidic.JobDiscarded {
				t.Errorf("job %d %s, want discarded", j.ID, j.State)
			}
		}
		if n := calls.get("two"); n != 2 {
			t.Errorf("step two ran %d times, want MaxAttempts = 2", n)
		}

		fixed.Store(true)
		retried, err := e.Retry(ctx, id)
		if err != nil {
			t.Fatalf("Retry: %v", err)
		}
		if retried.State != acidic.RunPending {
			t.Errorf("Retry returned a %s run, want pending", retried.State)
		}
		r = waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed)
		if r.State != acidic.RunSucceeded {
			t.Fatalf("after Retry: run %s: %s", r.State, r.Error)
		}
		if calls.get("one") != 1 || calls.get("three") != 1 {
			t.Errorf("calls one=%d three=%d, want 1 and 1", calls.get("one"), calls.get("three"))
		}
		for _, name := range []string{"one", "two", "three"} {
			if n := countEffects(t, drv, id, name); n != 1 {
				t.Errorf("step %s: %d effects, want 1", name, n)
			}
		}
		if r.Error != "" {
			t.Errorf("succeeded run keeps error %q", r.Error)
		}

		if _, err := e.Retry(ctx, id); !errors.Is(err, workflow.ErrNotRetryable) {
			t.Errorf("Retry of a succeeded run: err %v, want ErrNotRetryable", err)
		}
		if _, err := e.Retry(ctx, uuid.New()); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("Retry of an unknown run: err %v, want acidic.ErrNotFound", err)
		}
		if n := len(jobsOf(t, drv, id, "")); n != 2 {
			t.Errorf("run has %d jobs, want 2 (the failed one and the retry's)", n)
		}
	})
}

// Retry must resume a halted run even when it comes right after the halt,
// before the job that halted it has been marked completed.
func TestRetryRightAfterHaltResumesRun(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: it holds the job's row lock (FOR UPDATE) to delay the completion; SQLite's one write lock would block the Retry under test too.
	drv := testdb.New(t, testdb.Options{})
	entered := make(chan struct{})
	proceed := make(chan struct{})
	var calls counter
	wf := workflow.Define("pause", fastOptions(3),
		steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
			if calls.inc("one") == 1 {
				close(entered)
				<-proceed
			}
			return steps.Halt()
		}),
		steps.Do("two", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
			calls.inc("two")
			return nil
		}),
	)
	e := newEngine(t, drv, engineConfig(1), wf)
	startEngine(t, e)
	ctx := ctxT(t)
	id := enqueue(t, e, "pause", profileArgs{})
	<-entered

	// Hold the job's row so the queue cannot record its completion yet.
	jobs := jobsOf(t, drv, id, "pause")
	if len(jobs) != 1 {
		t.Fatalf("%d jobs", len(jobs))
	}
	tx, err := drv.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM "+table(drv, "jobs")+" WHERE id = $1 FOR UPDATE", jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	waitFor(t, 10*time.Second, "the run to halt at step two", func() (bool, string) {
		r := getRun(t, e, id)
		return r.State == acidic.RunHalted && r.RecoveryPoint == "two" && r.LockedBy == "", string(r.State) + " at " + r.RecoveryPoint
	})
	if _, err := e.Retry(ctx, id); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for getRun(t, e, id).State != acidic.RunSucceeded {
		if time.Now().After(deadline) {
			r := getRun(t, e, id)
			t.Fatalf("run %s at %s 5s after Retry, want succeeded; jobs: %s", r.State, r.RecoveryPoint, describeJobs(jobsOf(t, drv, id, "")))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if calls.get("two") != 1 || calls.get("one") != 1 {
		t.Errorf("calls one=%d two=%d, want 1 and 1", calls.get("one"), calls.get("two"))
	}
}

// Cancel stops a run whose step is running: the step's context is
// cancelled, it cannot commit, and later steps never run.
func TestCancelRunningStep(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		entered := make(chan struct{})
		returned := make(chan error, 1)
		var calls counter
		// On SQLite a step that has written holds the file's one write lock
		// until it returns, and every other write waits for it, Cancel's
		// included (docs/architecture.md, Drivers): a step blocked there
		// cannot be cancelled. There the step writes its effect only once
		// its context ended, in its transaction, which must not commit.
		writeFirst := !testdb.IsSQLite(drv)
		wf := workflow.Define("blocking", fastOptions(5),
			steps.Do("wait", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				n := calls.inc("wait")
				if writeFirst {
					if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "wait", n); err != nil {
						return err
					}
				}
				if n == 1 {
					close(entered)
				}
				<-ctx.Done()
				if !writeFirst {
					if err := recordEffect(context.WithoutCancel(ctx), drv, sc.Tx(), sc.RunID(), "wait", n); err != nil {
						return err
					}
				}
				select {
				case returned <- context.Cause(ctx):
				default:
				}
				return ctx.Err()
			}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("after")
				return nil
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "blocking", profileArgs{})
		<-entered

		r, err := e.Cancel(ctx, id)
		if err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if r.State != acidic.RunCancelled || r.FinishedAt == nil {
			t.Fatalf("Cancel returned a %s run (finished %v)", r.State, r.FinishedAt)
		}
		select {
		case cause := <-returned:
			t.Logf("step returned after its context ended: %v", cause)
		case <-time.After(10 * time.Second):
			t.Fatal("the running step's context was not cancelled")
		}
		for _, j := range waitJobsFinal(t, drv, id, "blocking") {
			if j.State != acidic.JobCancelled {
				t.Errorf("job %d %s, want cancelled", j.ID, j.State)
			}
		}
		time.Sleep(100 * time.Millisecond) // nothing may run later
		r = getRun(t, e, id)
		if r.State != acidic.RunCancelled || r.RecoveryPoint != "wait" {
			t.Errorf("run %s at %s, want cancelled at wait", r.State, r.RecoveryPoint)
		}
		if calls.get("after") != 0 {
			t.Errorf("step after ran %d times after the run was cancelled", calls.get("after"))
		}
		if n := countRows(t, drv, "effects", "run_id = $1", id); n != 0 {
			t.Errorf("%d effects of the cancelled step committed", n)
		}

		// Cancelling again returns the run unchanged.
		again, err := e.Cancel(ctx, id)
		if err != nil || again.State != acidic.RunCancelled || !again.UpdatedAt.Equal(r.UpdatedAt) {
			t.Errorf("second Cancel: %+v, %v; want the cancelled run unchanged", again, err)
		}
	})
}

// Cancel stops a run between snoozes.
func TestCancelSnoozingRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var calls counter
		wf := workflow.Define("poller", fastOptions(1),
			steps.Do("poll", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("poll")
				return steps.Snooze(20 * time.Millisecond)
			}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("after")
				return nil
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "poller", profileArgs{})
		waitFor(t, 10*time.Second, "three polls", func() (bool, string) {
			n := calls.get("poll")
			return n >= 3, fmt.Sprintf("%d polls", n)
		})
		r, err := e.Cancel(ctx, id)
		if err != nil || r.State != acidic.RunCancelled {
			t.Fatalf("Cancel: %+v, %v", r, err)
		}
		for _, j := range waitJobsFinal(t, drv, id, "poller") {
			if j.State != acidic.JobCancelled {
				t.Errorf("job %d %s, want cancelled", j.ID, j.State)
			}
		}
		polls := calls.get("poll")
		time.Sleep(100 * time.Millisecond) // several snooze periods
		if n := calls.get("poll"); n != polls {
			t.Errorf("poll ran %d more times after the run was cancelled", n-polls)
		}
		if calls.get("after") != 0 {
			t.Errorf("step after ran")
		}
		if r := getRun(t, e, id); r.State != acidic.RunCancelled {
			t.Errorf("run %s, want cancelled", r.State)
		}
		if jobs := liveJobs(t, drv, id); len(jobs) != 0 {
			t.Errorf("live jobs after cancel: %s", describeJobs(jobs))
		}
	})
}

func TestCancelFinishedOrUnknownRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		wf := workflow.Define("quick", fastOptions(1), noop[profileArgs, noState]("only"))
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "quick", profileArgs{})
		done := waitRun(t, e, id, acidic.RunSucceeded)
		r, err := e.Cancel(ctx, id)
		if err != nil {
			t.Fatalf("Cancel of a succeeded run: %v", err)
		}
		if r.State != acidic.RunSucceeded || r.Error != "" || !r.UpdatedAt.Equal(done.UpdatedAt) {
			t.Errorf("Cancel of a succeeded run returned %s (error %q), want it unchanged", r.State, r.Error)
		}
		if r := getRun(t, e, id); r.State != acidic.RunSucceeded {
			t.Errorf("run %s after Cancel, want still succeeded", r.State)
		}

		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("Cancel of an unknown run panicked: %v", p)
				}
			}()
			if _, err := e.Cancel(ctx, uuid.New()); !errors.Is(err, acidic.ErrNotFound) {
				t.Errorf("Cancel of an unknown run: err %v, want acidic.ErrNotFound", err)
			}
		}()
	})
}

// Retry of a run that is still pending because its step failed and its job
// is waiting out a long backoff makes that job due now: the run resumes at
// once, on the same job, rather than after the backoff.
func TestRetryOfPendingRunInBackoffMakesItsJobDue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var calls counter
		wf := workflow.Define("backingoff", workflow.Options{
			MaxAttempts: 3,
			Backoff:     func(int, error) time.Duration { return time.Hour },
		},
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("one")
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "one", 0)
			}),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				if calls.inc("two") == 1 {
					return errors.New("upstream is down")
				}
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "two", 0)
			}),
		)
		first := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, first)
		ctx := ctxT(t)
		id := enqueue(t, first, "backingoff", profileArgs{})

		// Step two fails on attempt 1 of 3: the job waits an hour to retry.
		var backingOff *acidic.Job
		waitFor(t, 10*time.Second, "the run's job to back off", func() (bool, string) {
			jobs := jobsOf(t, drv, id, "")
			if len(jobs) == 1 && jobs[0].State == acidic.JobRetryable {
				backingOff = jobs[0]
				return true, ""
			}
			return false, describeJobs(jobs)
		})
		if wait := time.Until(backingOff.ScheduledAt); wait < 30*time.Minute || backingOff.Attempt != 1 {
			t.Fatalf("job %d: attempt %d, due in %s; want attempt 1 due in about an hour", backingOff.ID, backingOff.Attempt, wait.Round(time.Second))
		}
		if r := getRun(t, first, id); r.State != acidic.RunPending || r.RecoveryPoint != "two" || r.LockedBy != "" {
			t.Fatalf("run %s at %q locked by %q; want pending at two, unlocked", r.State, r.RecoveryPoint, r.LockedBy)
		}
		// No worker may take the job between Retry and the checks below.
		stopEngine(t, first)

		retried, err := first.Retry(ctx, id)
		if err != nil {
			t.Fatalf("Retry of a pending run: %v", err)
		}
		if retried.State != acidic.RunPending {
			t.Errorf("Retry returned a %s run, want pending", retried.State)
		}
		jobs := jobsOf(t, drv, id, "")
		if len(jobs) != 1 {
			t.Fatalf("after Retry the run has jobs %s; want only the job that was backing off", describeJobs(jobs))
		}
		j := jobs[0]
		due := countRows(t, drv, "jobs", "id = $1 AND scheduled_at <= $2", j.ID, time.Now()) == 1
		if j.ID != backingOff.ID || j.State != acidic.JobAvailable || !due || j.Attempt != 1 {
			t.Fatalf("after Retry: job %d %s, attempt %d, scheduled at %s (due now: %v); want job %d available now, attempt 1",
				j.ID, j.State, j.Attempt, j.ScheduledAt.Format(time.RFC3339Nano), due, backingOff.ID)
		}

		second := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, second)
		waitFor(t, 5*time.Second, "the retried run to finish", func() (bool, string) {
			r := getRun(t, second, id)
			return r.State.Final(), fmt.Sprintf("run %s at %s; jobs %s", r.State, r.RecoveryPoint, describeJobs(jobsOf(t, drv, id, "")))
		})
		if r := getRun(t, second, id); r.State != acidic.RunSucceeded {
			t.Fatalf("after Retry: run %s at %s (%s), want succeeded; jobs %s", r.State, r.RecoveryPoint, r.Error, describeJobs(jobsOf(t, drv, id, "")))
		}
		if calls.get("one") != 1 || calls.get("two") != 2 {
			t.Errorf("calls one=%d two=%d, want 1 and 2", calls.get("one"), calls.get("two"))
		}
		for _, name := range []string{"one", "two"} {
			if n := countEffects(t, drv, id, name); n != 1 {
				t.Errorf("step %s: %d effects, want 1", name, n)
			}
		}
		jobs = waitJobsFinal(t, drv, id, "")
		if len(jobs) != 1 || jobs[0].State != acidic.JobCompleted || jobs[0].Attempt != 2 {
			t.Errorf("jobs %s; want the one job, completed on attempt 2", describeJobs(jobs))
		}
	})
}

// Retry of a cancelled run resumes it at its recovery point: the step that
// committed before the cancel does not run again.
func TestRetryOfCancelledRunKeepsCommittedStep(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var ones, twos atomic.Int32
		var resumed atomic.Bool
		wf := workflow.Define("interrupted", fastOptions(3),
			steps.Do("one", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				ones.Add(1)
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "one", 0)
			}),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				twos.Add(1)
				if !resumed.Load() {
					return steps.Snooze(time.Hour)
				}
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "two", 0)
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "interrupted", profileArgs{})

		waitFor(t, 10*time.Second, "the run to snooze in step two", func() (bool, string) {
			r := getRun(t, e, id)
			jobs := jobsOf(t, drv, id, "")
			ok := r.State == acidic.RunPending && r.RecoveryPoint == "two" && r.LockedBy == "" &&
				len(jobs) == 1 && jobs[0].State == acidic.JobScheduled
			return ok, fmt.Sprintf("run %s at %s; jobs %s", r.State, r.RecoveryPoint, describeJobs(jobs))
		})
		if n := countEffects(t, drv, id, "one"); n != 1 {
			t.Fatalf("before the cancel: step one has %d effects, want 1", n)
		}
		if r, err := e.Cancel(ctx, id); err != nil || r.State != acidic.RunCancelled {
			t.Fatalf("Cancel: %+v, %v", r, err)
		}
		for _, j := range waitJobsFinal(t, drv, id, "") {
			if j.State != acidic.JobCancelled {
				t.Errorf("job %d %s after Cancel, want cancelled", j.ID, j.State)
			}
		}

		resumed.Store(true)
		retried, err := e.Retry(ctx, id)
		if err != nil {
			t.Fatalf("Retry of a cancelled run: %v", err)
		}
		if retried.State != acidic.RunPending {
			t.Errorf("Retry returned a %s run, want pending", retried.State)
		}
		waitFor(t, 10*time.Second, "the retried run to finish", func() (bool, string) {
			r := getRun(t, e, id)
			return r.State.Final(), fmt.Sprintf("run %s at %s; jobs %s", r.State, r.RecoveryPoint, describeJobs(jobsOf(t, drv, id, "")))
		})
		if r := getRun(t, e, id); r.State != acidic.RunSucceeded {
			t.Fatalf("after Retry: run %s at %s (%s), want succeeded; jobs %s", r.State, r.RecoveryPoint, r.Error, describeJobs(jobsOf(t, drv, id, "")))
		}
		r := getRun(t, e, id)
		if n := countEffects(t, drv, id, "one"); n != 1 || ones.Load() != 1 {
			t.Errorf("step one: %d effects, %d executions; want 1 and 1", n, ones.Load())
		}
		if n := countEffects(t, drv, id, "two"); n != 1 || twos.Load() != 2 {
			t.Errorf("step two: %d effects, %d executions; want 1, and 2 (the snooze, then the retry)", n, twos.Load())
		}
		if s := stepLog(t, r, "one"); s.State != acidic.StepSucceeded || s.Executions != 1 {
			t.Errorf("step one log: %s after %d executions, want succeeded once", s.State, s.Executions)
		}
		if r.Error != "" {
			t.Errorf("succeeded run keeps error %q", r.Error)
		}
	})
}
