package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

type invoiceArgs struct {
	Customer string `json:"customer"`
	Lines    []int  `json:"lines"`
}

type invoiceState struct {
	Total int    `json:"total"`
	Sent  string `json:"sent"`
}

type invoiceResult struct {
	Number string `json:"number"`
	Total  int    `json:"total"`
}

// invoiceWorkflow is defined with its types given once and its steps added
// by the builder methods.
func invoiceWorkflow() *workflow.Workflow[invoiceArgs, invoiceState] {
	return workflow.Define[invoiceArgs, invoiceState]("invoice", fastOptions(3)).
		Step("total", func(ctx context.Context, sc *steps.Context[invoiceArgs, invoiceState]) error {
			for _, l := range sc.Args.Lines {
				sc.State.Total += l
			}
			return sc.SetResult(map[string]int{"lines": len(sc.Args.Lines)})
		}).
		Step("send", func(ctx context.Context, sc *steps.Context[invoiceArgs, invoiceState]) error {
			sc.State.Sent = "to " + sc.Args.Customer
			return sc.SetResult(invoiceResult{Number: "INV-" + sc.Args.Customer, Total: sc.State.Total})
		})
}

// drain works the default queue until nothing is left to run, scheduled
// retries included.
func drain(t *testing.T, e *workflow.Engine) {
	t.Helper()
	if _, err := e.Queue().Drain(ctxT(t), queue.DefaultQueue, queue.DrainOptions{WithScheduled: true}); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// runsAndJobs counts the runs and jobs in drv's schema.
func runsAndJobs(t *testing.T, drv storage.Driver) (runs, jobs int) {
	t.Helper()
	return countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", "")
}

// A run enqueued through the typed handle comes back from Get, GetByKey
// and Wait with its arguments and persisted state decoded, and its result
// and step results decode into their types.
func TestHandleEnqueueGetWaitDecode(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		invoice := invoiceWorkflow()
		e := newEngine(t, drv, engineConfig(1), invoice)

		args := invoiceArgs{Customer: "acme", Lines: []int{100, 250}}
		res, err := invoice.Enqueue(ctx, e, args, workflow.EnqueueOptions{Key: "acme-1"})
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		pending, err := invoice.Get(ctx, e, res.Run.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if pending.State != acidic.RunPending || pending.Args.Customer != "acme" || len(pending.Args.Lines) != 2 || pending.Attrs != (invoiceState{}) {
			t.Errorf("pending run: %s args %+v attrs %+v", pending.State, pending.Args, pending.Attrs)
		}
		if _, err := acidic.DecodeResult[invoiceResult](pending.Run); !errors.Is(err, acidic.ErrNoResult) {
			t.Errorf("DecodeResult of a pending run: %v, want ErrNoResult", err)
		}

		drain(t, e)
		for name, get := range map[string]func() (*workflow.RunOf[invoiceArgs, invoiceState], error){
			"Get":      func() (*workflow.RunOf[invoiceArgs, invoiceState], error) { return invoice.Get(ctx, e, res.Run.ID) },
			"GetByKey": func() (*workflow.RunOf[invoiceArgs, invoiceState], error) { return invoice.GetByKey(ctx, e, "acme-1") },
			"Wait":     func() (*workflow.RunOf[invoiceArgs, invoiceState], error) { return invoice.Wait(ctx, e, res.Run.ID) },
		} {
			r, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if r.ID != res.Run.ID || r.State != acidic.RunSucceeded || len(r.Steps) != 2 {
				t.Errorf("%s: run %s %s with %d steps", name, r.ID, r.State, len(r.Steps))
			}
			if r.Args.Customer != "acme" || r.Attrs != (invoiceState{Total: 350, Sent: "to acme"}) {
				t.Errorf("%s: args %+v attrs %+v", name, r.Args, r.Attrs)
			}
			got, err := acidic.DecodeResult[invoiceResult](r.Run)
			if err != nil || got != (invoiceResult{Number: "INV-acme", Total: 350}) {
				t.Errorf("%s: DecodeResult = %+v, %v", name, got, err)
			}
			lines, err := acidic.DecodeStepResult[map[string]int](r.Run, "total")
			if err != nil || lines["lines"] != 2 {
				t.Errorf("%s: DecodeStepResult(total) = %v, %v", name, lines, err)
			}
		}

		r, err := invoice.Get(ctx, e, res.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A result of another shape is a typed decode error.
		_, err = acidic.DecodeResult[[]string](r.Run)
		var de *acidic.DecodeError
		if !errors.Is(err, acidic.ErrDecode) || !errors.As(err, &de) || de.What != "result" || de.RunID != r.ID || de.Type != "[]string" {
			t.Errorf("DecodeResult into []string: %v (%+v)", err, de)
		}
		var jsonErr *json.UnmarshalTypeError
		if !errors.As(err, &jsonErr) {
			t.Errorf("DecodeResult error does not carry the JSON error: %v", err)
		}
		_, err = acidic.DecodeStepResult[int](r.Run, "total")
		if !errors.As(err, &de) || de.What != "step result" || de.Step != "total" {
			t.Errorf("DecodeStepResult into int: %v", err)
		}
		if _, err := acidic.DecodeStepResult[int](r.Run, "nope"); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("DecodeStepResult of an unknown step: %v, want ErrNotFound", err)
		}
	})
}

// A handle whose workflow the engine does not have (by name, or by its
// types) is ErrUnknownWorkflow for every call, and enqueueing through it
// writes nothing.
func TestHandleNotRegisteredWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)

		// The engine has "invoice" with other argument types, and no "credit".
		otherTypes := workflow.Define("invoice", workflow.Options{},
			steps.Do("total", func(context.Context, *steps.Context[orderArgs, invoiceState]) error { return nil }))
		e := newEngine(t, drv, engineConfig(1), otherTypes)
		existing, err := e.Enqueue(ctx, "invoice", orderArgs{OrderID: "o-1"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}

		credit := workflow.Define[invoiceArgs, invoiceState]("credit", workflow.Options{}).
			Step("a", func(context.Context, *steps.Context[invoiceArgs, invoiceState]) error { return nil })
		for name, h := range map[string]*workflow.Workflow[invoiceArgs, invoiceState]{
			"unknown name":    credit,
			"other arg types": invoiceWorkflow(),
		} {
			args := invoiceArgs{Customer: "acme"}
			if _, err := h.Enqueue(ctx, e, args, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("%s: Enqueue: %v, want ErrUnknownWorkflow", name, err)
			}
			tx := testdb.Begin(t, drv)
			if _, err := h.EnqueueTx(ctx, e, tx, args, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("%s: EnqueueTx: %v, want ErrUnknownWorkflow", name, err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Get(ctx, e, existing.Run.ID); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("%s: Get: %v, want ErrUnknownWorkflow", name, err)
			}
			if _, err := h.GetByKey(ctx, e, "k"); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("%s: GetByKey: %v, want ErrUnknownWorkflow", name, err)
			}
			if _, err := h.Wait(ctx, e, existing.Run.ID); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("%s: Wait: %v, want ErrUnknownWorkflow", name, err)
			}
		}
		// Same name and argument type, other state type.
		otherState := workflow.Define[orderArgs, invoiceResult]("invoice", workflow.Options{}).
			Step("total", func(context.Context, *steps.Context[orderArgs, invoiceResult]) error { return nil })
		if _, err := otherState.Enqueue(ctx, e, orderArgs{OrderID: "o-2"}, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) ||
			!strings.Contains(fmt.Sprint(err), "invoiceResult") {
			t.Errorf("other state type: Enqueue: %v, want ErrUnknownWorkflow naming the types", err)
		}
		if runs, jobs := runsAndJobs(t, drv); runs != 1 || jobs != 1 {
			t.Errorf("after refused enqueues: %d runs, %d jobs; want only the first run and its job", runs, jobs)
		}

		// A second Define with the registered types is the same workflow.
		again := workflow.Define("invoice", workflow.Options{},
			steps.Do("total", func(context.Context, *steps.Context[orderArgs, invoiceState]) error { return nil }))
		res, err := again.Enqueue(ctx, e, orderArgs{OrderID: "o-3"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatalf("Enqueue through a second Define of the registered types: %v", err)
		}
		if r, err := again.Get(ctx, e, res.Run.ID); err != nil || r.Args.OrderID != "o-3" {
			t.Errorf("Get through a second Define: %+v, %v", r, err)
		}
	})
}

// A step that stages a run through a handle the engine does not have
// fails (the staged run never exists); the by-name API keeps working.
func TestHandleRequestOfUnregisteredWorkflowFailsTheStep(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		// "invoice" is registered with orderArgs; this handle has invoiceArgs.
		registered := workflow.Define("invoice", workflow.Options{},
			steps.Do("total", func(context.Context, *steps.Context[orderArgs, invoiceState]) error { return nil }))
		stranger := invoiceWorkflow()
		parent := workflow.Define[orderArgs, struct{}]("parent", fastOptions(1)).
			Step("stage", func(ctx context.Context, sc *steps.Context[orderArgs, struct{}]) error {
				_, err := sc.EnqueueRun(ctx, stranger.Request(invoiceArgs{Customer: "x"}))
				return err
			})
		e := newEngine(t, drv, engineConfig(1), registered, parent)
		res, err := parent.Enqueue(ctx, e, orderArgs{OrderID: "p"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, e)
		r, err := parent.Get(ctx, e, res.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, workflow.ErrUnknownWorkflow.Error()) {
			t.Errorf("parent: %s %q, want failed with ErrUnknownWorkflow", r.State, r.Error)
		}
		if runs, _ := runsAndJobs(t, drv); runs != 1 {
			t.Errorf("%d runs, want only the parent", runs)
		}
	})
}

// Get refuses a run of another workflow (it is not a run of the handle's
// workflow), and an unknown id is acidic.ErrNotFound.
func TestHandleGetRunOfOtherWorkflow(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		invoice := invoiceWorkflow()
		credit := workflow.Define[invoiceArgs, invoiceState]("credit", workflow.Options{}).
			Step("a", func(context.Context, *steps.Context[invoiceArgs, invoiceState]) error { return nil })
		e := newEngine(t, drv, engineConfig(1), invoice, credit)
		res, err := credit.Enqueue(ctx, e, invoiceArgs{Customer: "acme"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for name, get := range map[string]func(uuid.UUID) error{
			"Get": func(id uuid.UUID) error {
				_, err := invoice.Get(ctx, e, id)
				return err
			},
			"Wait": func(id uuid.UUID) error {
				_, err := invoice.Wait(ctx, e, id)
				return err
			},
		} {
			if err := get(res.Run.ID); !errors.Is(err, acidic.ErrNotFound) || !strings.Contains(err.Error(), `run of "credit"`) {
				t.Errorf("%s of a credit run through the invoice handle: %v, want ErrNotFound", name, err)
			}
			if err := get(uuid.New()); !errors.Is(err, acidic.ErrNotFound) {
				t.Errorf("%s of an unknown id: %v, want ErrNotFound", name, err)
			}
		}
	})
}

// A run whose stored arguments or state no longer decode into the handle's
// types (the types changed between deploys) is a typed error from Get:
// ErrArgsDecode or ErrStateDecode, and an *acidic.DecodeError.
func TestHandleGetDecodeErrors(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)

		type oldArgs struct {
			Customer int `json:"customer"`
		}
		type oldState struct {
			Total string `json:"total"`
		}
		old := workflow.Define("invoice", workflow.Options{},
			steps.Do("total", func(_ context.Context, sc *steps.Context[oldArgs, oldState]) error {
				sc.State.Total = "lots"
				return nil
			}),
			steps.Do("send", func(context.Context, *steps.Context[oldArgs, oldState]) error { return nil }))
		oldEngine := newEngine(t, drv, engineConfig(1), old)
		badArgs, err := old.Enqueue(ctx, oldEngine, oldArgs{Customer: 7}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// This run's arguments decode into the new type too, but its state
		// does not.
		badState, err := oldEngine.Enqueue(ctx, "invoice", json.RawMessage(`{"lines": [1]}`), workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, oldEngine)

		invoice := invoiceWorkflow()
		e := newEngine(t, drv, engineConfig(1), invoice)
		var de *acidic.DecodeError
		_, err = invoice.Get(ctx, e, badArgs.Run.ID)
		if !errors.Is(err, workflow.ErrArgsDecode) || !errors.Is(err, acidic.ErrDecode) || !errors.As(err, &de) ||
			de.What != "args" || de.RunID != badArgs.Run.ID || !strings.HasSuffix(de.Type, "invoiceArgs") {
			t.Errorf("Get of a run with old args: %v (%+v)", err, de)
		}
		_, err = invoice.Wait(ctx, e, badState.Run.ID)
		if !errors.Is(err, workflow.ErrStateDecode) || !errors.As(err, &de) || de.What != "state" || !strings.HasSuffix(de.Type, "invoiceState") {
			t.Errorf("Wait for a run with old state: %v (%+v)", err, de)
		}
		// The by-name API still reads both.
		for _, id := range []uuid.UUID{badArgs.Run.ID, badState.Run.ID} {
			if r, err := e.Get(ctx, id); err != nil || r.State != acidic.RunSucceeded {
				t.Errorf("Engine.Get(%s): %v", id, err)
			}
		}
	})
}

// Steps added with the builder after Define make the same workflow as the
// list given to Define; adding one after Register panics; Add never writes
// to the caller's slice.
func TestBuilderSteps(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		var order []string
		step := func(name string) steps.Func[orderArgs, orderState] {
			return func(context.Context, *steps.Context[orderArgs, orderState]) error {
				order = append(order, name)
				return nil
			}
		}
		list := make([]steps.Step[orderArgs, orderState], 1, 4)
		list[0] = steps.Do("a", step("a"))
		built := workflow.Define("built", workflow.Options{}, list...).
			Step("b", step("b")).
			Add(steps.Do("c", step("c")))
		if spare := list[:2][1]; spare.Name() != "" {
			t.Errorf("Add wrote step %q into the caller's slice", spare.Name())
		}

		e := newEngine(t, drv, engineConfig(1), built)
		func() {
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "after Register") {
					t.Errorf("Step after Register: panic %v, want one", p)
				}
			}()
			built.Step("d", step("d"))
		}()
		res, err := built.Enqueue(ctx, e, orderArgs{OrderID: "o"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, e)
		r, err := built.Get(ctx, e, res.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != acidic.RunSucceeded || strings.Join(order, ",") != "a,b,c" {
			t.Errorf("run %s, steps ran %v; want a,b,c", r.State, order)
		}

		// The same steps listed in Define: the same definition, so a run of
		// one is resumed by the other.
		listed := workflow.Define("built", workflow.Options{}, steps.Do("a", step("a")), steps.Do("b", step("b")), steps.Do("c", step("c")))
		if err := listed.Validate(); err != nil {
			t.Fatal(err)
		}
		e2 := newEngine(t, drv, engineConfig(1), listed)
		res2, err := built.Enqueue(ctx, e2, orderArgs{OrderID: "o2"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, e2)
		if r, err := listed.Get(ctx, e2, res2.Run.ID); err != nil || r.State != acidic.RunSucceeded {
			t.Errorf("run of the listed definition: %v, %v", r, err)
		}
	})
}

// Wait whose context ends before the run finishes returns the run as last
// read, decoded, with the context's error.
func TestHandleWaitDeadlineReturnsTheRunDecoded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		invoice := invoiceWorkflow()
		e := newEngine(t, drv, engineConfig(1), invoice) // never started: the run stays pending
		res, err := invoice.Enqueue(ctxT(t), e, invoiceArgs{Customer: "acme"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
		defer cancel()
		r, err := invoice.Wait(ctx, e, res.Run.ID)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait: %v, want DeadlineExceeded", err)
		}
		if r == nil || r.State != acidic.RunPending || r.Args.Customer != "acme" {
			t.Errorf("Wait returned %+v, want the pending run decoded", r)
		}
	})
}
