package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type loopState struct {
	Chunks int `json:"chunks"`
	Polls  int `json:"polls"`
}

func TestHaltLeavesRunHaltedUntilRetried(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var calls counter
		wf := workflow.Define("approval", fastOptions(3),
			steps.Do("request", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("request")
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "request", 0); err != nil {
					return err
				}
				return steps.Halt()
			}),
			steps.Do("apply", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				calls.inc("apply")
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "apply", 0)
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		ctx := ctxT(t)
		id := enqueue(t, e, "approval", profileArgs{})

		// The halting job completes; the run waits at the next step.
		for _, j := range waitJobsFinal(t, drv, id, "approval") {
			if j.State != acidic.JobCompleted {
				t.Errorf("halting job %d %s, want completed", j.ID, j.State)
			}
		}
		r := getRun(t, e, id)
		if r.State != acidic.RunHalted || r.RecoveryPoint != "apply" || r.LockedBy != "" {
			t.Fatalf("halted run %s at %q locked by %q; want halted at apply, unlocked", r.State, r.RecoveryPoint, r.LockedBy)
		}
		if s := stepLog(t, r, "request"); s.State != acidic.StepHalted {
			t.Errorf("request step log %s, want halted", s.State)
		}
		if jobs := liveJobs(t, drv, id); len(jobs) != 0 {
			t.Errorf("halted run has live jobs: %s", describeJobs(jobs))
		}
		if calls.get("apply") != 0 || countEffects(t, drv, id, "request") != 1 {
			t.Errorf("apply ran %d times, request effects %d; want 0 and 1", calls.get("apply"), countEffects(t, drv, id, "request"))
		}

		if _, err := e.Retry(ctx, id); err != nil {
			t.Fatalf("Retry: %v", err)
		}
		r = waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed)
		if r.State != acidic.RunSucceeded {
			t.Fatalf("after Retry: %s (%s)", r.State, r.Error)
		}
		if calls.get("request") != 1 || calls.get("apply") != 1 {
			t.Errorf("calls request=%d apply=%d, want 1 and 1", calls.get("request"), calls.get("apply"))
		}
		if countEffects(t, drv, id, "apply") != 1 {
			t.Errorf("apply effect missing")
		}
	})
}

func TestRepeatRunsStepAgainInNewTransaction(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var calls counter
		wf := workflow.Define("chunked", fastOptions(1),
			steps.Do("chunk", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				calls.inc("chunk")
				sc.State.Chunks++
				// Each chunk's effect commits with its own transaction.
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "chunk", sc.State.Chunks); err != nil {
					return err
				}
				if sc.State.Chunks <= 3 {
					return steps.Repeat()
				}
				return nil
			}),
			steps.Do("done", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				return sc.SetResult(sc.State.Chunks)
			}),
		)
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		id := enqueue(t, e, "chunked", profileArgs{})
		r := waitSucceeded(t, e, id)
		if n := calls.get("chunk"); n != 4 {
			t.Errorf("chunk ran %d times, want 4", n)
		}
		if n := countEffects(t, drv, id, "chunk"); n != 4 {
			t.Errorf("%d chunk effects, want 4", n)
		}
		if s := stepLog(t, r, "chunk"); s.Executions != 4 || s.State != acidic.StepSucceeded {
			t.Errorf("chunk step log: %s, %d executions; want succeeded, 4", s.State, s.Executions)
		}
		if string(r.Result) != "4" {
			t.Errorf("result %s, want 4", r.Result)
		}
		// Repeats happen inside one job attempt and spend no attempts.
		jobs := jobsOf(t, drv, id, "chunked")
		if len(jobs) != 1 || jobs[0].Attempt != 1 {
			t.Errorf("jobs: %s, want one job, one attempt", describeJobs(jobs))
		}
	})
}

func TestSnoozeSpendsNoAttempt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var calls counter
		var mu sync.Mutex
		var gaps []time.Duration
		var last time.Time
		wf := workflow.Define("polling", fastOptions(1),
			steps.Do("poll", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				now := time.Now()
				mu.Lock()
				if calls.inc("poll") > 1 {
					gaps = append(gaps, now.Sub(last))
				}
				last = now
				mu.Unlock()
				sc.State.Polls++
				if sc.State.Polls <= 2 {
					return steps.Snooze(10 * time.Millisecond)
				}
				return nil
			}),
			steps.Do("done", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				return sc.SetResult(sc.State.Polls)
			}),
		)
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		id := enqueue(t, e, "polling", profileArgs{})
		r := waitSucceeded(t, e, id)
		if n := calls.get("poll"); n != 3 {
			t.Errorf("poll ran %d times, want 3", n)
		}
		if string(r.Result) != "3" {
			t.Errorf("result %s, want 3 (the poll count persisted across snoozes)", r.Result)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, g := range gaps {
			if g < 10*time.Millisecond {
				t.Errorf("snooze %d lasted %s, want at least 10ms", i+1, g)
			}
		}
		jobs := waitJobsFinal(t, drv, id, "polling")
		if len(jobs) != 1 || jobs[0].State != acidic.JobCompleted || len(jobs[0].Errors) != 0 {
			t.Errorf("jobs: %s, want one completed job without errors", describeJobs(jobs))
		}
		if s := stepLog(t, r, "poll"); s.Executions != 3 {
			t.Errorf("poll step log: %d executions, want 3", s.Executions)
		}
	})
}

func TestCancelFromStepRollsBackAndCancelsRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var calls counter
		wf := workflow.Define("shop", fastOptions(5),
			steps.Do("reserve", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				calls.inc("reserve")
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "reserve", 0)
			}),
			steps.Do("pick", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				calls.inc("pick")
				sc.State.Chunks = 99
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "pick", 0); err != nil {
					return err
				}
				return steps.Cancel(errors.New("no stock"))
			}),
			steps.Do("ship", func(ctx context.Context, sc *steps.Context[profileArgs, loopState]) error {
				calls.inc("ship")
				return nil
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		id := enqueue(t, e, "shop", profileArgs{})
		r := waitRun(t, e, id, acidic.RunCancelled, acidic.RunSucceeded, acidic.RunFailed)
		if r.State != acidic.RunCancelled || !strings.Contains(r.Error, "no stock") {
			t.Fatalf("run %s with error %q, want cancelled mentioning no stock", r.State, r.Error)
		}
		for _, j := range waitJobsFinal(t, drv, id, "shop") {
			if j.State != acidic.JobCancelled {
				t.Errorf("job %d %s, want cancelled", j.ID, j.State)
			}
		}
		if n := countEffects(t, drv, id, "pick"); n != 0 {
			t.Errorf("the cancelling step's effect committed (%d rows)", n)
		}
		if n := countEffects(t, drv, id, "reserve"); n != 1 {
			t.Errorf("the step before lost its effect (%d rows)", n)
		}
		var st loopState
		if err := json.Unmarshal(r.Attrs, &st); err == nil && st.Chunks == 99 {
			t.Errorf("the cancelling step's state change was saved: %s", r.Attrs)
		}
		if r.RecoveryPoint != "pick" {
			t.Errorf("recovery point %q, want pick", r.RecoveryPoint)
		}
		if calls.get("pick") != 1 || calls.get("ship") != 0 {
			t.Errorf("calls: pick %d, ship %d; want 1 and 0", calls.get("pick"), calls.get("ship"))
		}
		t.Logf("cancel reason: %s", r.Error)
	})
}
