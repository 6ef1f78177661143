package workflow_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// A step that ends its goroutine with runtime.Goexit (t.FailNow in a test's
// step) after writing in its transaction fails its attempt: the write rolls
// back, the next attempt takes the run over, and after the last the run
// fails with the reason. A later run on the same engine still succeeds, so
// neither a worker slot nor the step's connection was lost.
func TestStepGoexitFailsTheRun(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var attempts counter
		wf := workflow.Define[struct{}, struct{}]("exiting", fastOptions(2)).
			Step("exit", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				attempts.inc("exit")
				if err := sc.Publish(ctx, "before-exit", "k", 1); err != nil {
					return err
				}
				runtime.Goexit()
				return nil
			})
		fine := workflow.Define[struct{}, struct{}]("fine", fastOptions(1)).
			Step("ok", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error { return nil })
		e := newEngine(t, drv, engineConfig(1), wf, fine)
		startEngine(t, e)
		id := enqueue(t, e, "exiting", struct{}{})
		r := waitRun(t, e, id, acidic.RunFailed, acidic.RunSucceeded, acidic.RunCancelled)
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, "Goexit") {
			t.Fatalf("run %s (%q), want failed with the Goexit", r.State, r.Error)
		}
		if n := attempts.get("exit"); n != 2 {
			t.Errorf("the step ran %d times, want 2", n)
		}
		if r := waitRun(t, e, enqueue(t, e, "fine", struct{}{}), acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded {
			t.Fatalf("a later run: %s (%q)", r.State, r.Error)
		}
		msgs, err := drv.OutboxList(ctxT(t), storage.OutboxListParams{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 0 {
			t.Fatalf("%d messages staged, want none: the step's transaction rolled back", len(msgs))
		}
	})
}
