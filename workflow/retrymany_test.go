package workflow_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// RetryMany resumes every failed run matching a filter, and only those; Wait
// returns each run once it has finished.
func TestRetryManyResumesFailedRunsAndWaitSeesThemFinish(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
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
		if err != nil || r.State != storage.RunFailed {
			t.Fatalf("Wait(%s) = %v, %v; want the run failed", id, r, err)
		}
	}

	healthy.Store(true)
	retried, err := e.RetryMany(ctx, storage.RunFilter{Workflow: "flaky", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(retried) != len(ids) {
		t.Fatalf("RetryMany resumed %d runs, want %d (paging by 2)", len(retried), len(ids))
	}
	for _, id := range ids {
		r, err := e.Wait(ctx, id)
		if err != nil || r.State != storage.RunSucceeded {
			t.Fatalf("after RetryMany: run %s %v, %v; want succeeded", id, r.State, err)
		}
	}
	if r, _ := e.Get(ctx, otherID); r.State != storage.RunFailed {
		t.Fatalf("a run of another workflow was retried: %s", r.State)
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	halted := workflow.Define("halts", workflow.Options{},
		steps.Do("a", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error { return steps.Halt() }),
		steps.Do("b", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error { return nil }))
	e2 := newEngine(t, drv, engineConfig(1), halted)
	startEngine(t, e2)
	hid := enqueue(t, e2, "halts", contendedArgs{})
	if _, err := e2.Wait(short, hid); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a halted run: %v, want the context's deadline", err)
	}
}
