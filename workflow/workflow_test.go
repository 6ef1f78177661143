package workflow_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type orderArgs struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

type orderState struct {
	ChargeID string `json:"charge_id"`
}

func TestFailedStepRetriesWithoutRepeatingCommittedSteps(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var mu sync.Mutex
		calls := map[string]int{}
		step := func(name string, failFirst int) steps.Step[orderArgs, orderState] {
			return steps.Do(name, func(ctx context.Context, sc *steps.Context[orderArgs, orderState]) error {
				mu.Lock()
				calls[name]++
				n := calls[name]
				mu.Unlock()
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), name, 0); err != nil {
					return err
				}
				if name == "charge" {
					sc.State.ChargeID = "ch_" + sc.Args.OrderID
				}
				if n <= failFirst {
					return errors.New(name + " failed")
				}
				return nil
			})
		}
		wf := workflow.Define("order", workflow.Options{MaxAttempts: 5},
			step("charge", 0), step("ledger", 0), step("receipt", 2))
		cfg := engineConfig(2)
		cfg.Queue.Workers = nil
		e := newEngine(t, drv, cfg, wf)
		startEngine(t, e)
		res, err := e.Enqueue(ctxT(t), "order", orderArgs{OrderID: "o1", Amount: 100}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, e, res.Run.ID, acidic.RunSucceeded, acidic.RunFailed)
		if r.State != acidic.RunSucceeded {
			t.Fatalf("run %s: %s", r.State, r.Error)
		}
		mu.Lock()
		defer mu.Unlock()
		if calls["charge"] != 1 || calls["ledger"] != 1 || calls["receipt"] != 3 {
			t.Fatalf("calls %v, want charge 1, ledger 1, receipt 3", calls)
		}
		for _, s := range []string{"charge", "ledger", "receipt"} {
			if n := countEffects(t, drv, r.ID, s); n != 1 {
				t.Errorf("step %s: %d effects, want exactly 1", s, n)
			}
		}
		if len(r.Steps) != 3 || r.Steps[2].Executions != 3 || r.Steps[2].State != acidic.StepSucceeded {
			t.Fatalf("step log %+v", r.Steps)
		}
	})
}
