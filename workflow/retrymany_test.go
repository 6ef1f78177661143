package workflow_test

import (
	"context"
	"errors"
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

// RetryMany resumes every failed run matching a filter, and only those; Wait
// returns each run once it has finished.
func TestRetryManyResumesFailedRunsAndWaitSeesThemFinish(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var healthy atomic.Bool
		flaky := workflow.Define("flaky", workflow.Options{MaxAttempts: 1},
			steps.Do("call", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				if !healthy.Load() {
					return errors.New("gateway down")
				}
				return nil
			}))
		other := workflow.Define("other", workflow.Options{MaxAttempts: 1},
			steps.Do("call", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				return errors.New("always fails")
			}))
		e := newEngine(t, drv, engineConfig(2), flaky, other)
		startEngine(t, e)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		var ids []uuid.UUID
		for i := range 5 {
			ids = append(ids, enqueue(t, e, "flaky", contendedArgs{N: i}))
		}
		otherID := enqueue(t, e, "other", contendedArgs{})
		for _, id := range append(ids, otherID) {
			r, err := e.Wait(ctx, id)
			if err != nil || r.State != acidic.RunFailed {
				t.Fatalf("Wait(%s) = %v, %v; want the run failed", id, r, err)
			}
		}

		healthy.Store(true)
		retried, err := e.RetryMany(ctx, acidic.RunFilter{Workflow: "flaky", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(retried) != len(ids) {
			t.Fatalf("RetryMany resumed %d runs, want %d (paging by 2)", len(retried), len(ids))
		}
		for _, id := range ids {
			r, err := e.Wait(ctx, id)
			if err != nil || r.State != acidic.RunSucceeded {
				t.Fatalf("after RetryMany: run %s %v, %v; want succeeded", id, r.State, err)
			}
		}
		if r, _ := e.Get(ctx, otherID); r.State != acidic.RunFailed {
			t.Fatalf("a run of another workflow was retried: %s", r.State)
		}

		halted := workflow.Define("halts", workflow.Options{Queue: "halts"},
			steps.Do("a", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error { return steps.Halt() }),
			steps.Do("b", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error { return nil }))
		cfg2 := engineConfig(1)
		cfg2.Queue.Queues = map[string]queue.QueueConfig{"halts": {MaxWorkers: 1}}
		e2 := newEngine(t, drv, cfg2, halted)
		startEngine(t, e2)
		hid := enqueue(t, e2, "halts", contendedArgs{})
		// A halted run rests until Retry: Wait returns it, halted.
		if r, err := e2.Wait(ctx, hid); err != nil || r.State != acidic.RunHalted || r.RecoveryPoint != "b" {
			t.Fatalf("Wait on a halting run: %+v, %v; want it halted at b", r, err)
		}
	})
}
