package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/workflow"
)

type cartArgs struct {
	Customer string  `json:"customer"`
	Items    []int   `json:"items"`
	Discount float64 `json:"discount,omitempty"`
}

type noState struct{}

func noop[A, S any](name string) steps.Step[A, S] {
	return steps.Do(name, func(context.Context, *steps.Context[A, S]) error { return nil })
}

func TestConcurrentEnqueueOfOneKeyMakesOneRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		keyed := workflow.Define("keyed", workflow.Options{Key: run.ByArgs()}, noop[cartArgs, noState]("only"))
		other := workflow.Define("other", workflow.Options{}, noop[cartArgs, noState]("only"))
		e := newEngine(t, drv, engineConfig(1), keyed, other) // not started: jobs stay put
		ctx := ctxT(t)

		// The same value, written two ways: key order must not matter.
		forms := []json.RawMessage{
			json.RawMessage(`{"customer":"c1","items":[1,2]}`),
			json.RawMessage(` { "items" : [1, 2], "customer" : "c1" } `),
		}
		const n = 10
		results := make([]*workflow.EnqueueResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = e.Enqueue(ctx, "keyed", forms[i%2], workflow.EnqueueOptions{})
			}()
		}
		close(start)
		wg.Wait()

		var created int
		var id uuid.UUID
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Enqueue %d: %v", i, errs[i])
			}
			if !results[i].Duplicate {
				created++
			}
			if i == 0 {
				id = results[i].Run.ID
			}
			if results[i].Run.ID != id {
				t.Errorf("Enqueue %d returned run %s, Enqueue 0 run %s", i, results[i].Run.ID, id)
			}
		}
		if created != 1 {
			t.Fatalf("%d enqueues reported a new run, want exactly 1", created)
		}
		if jobs := jobsOf(t, drv, id, ""); len(jobs) != 1 {
			t.Fatalf("run %s has %d jobs, want 1: %s", id, len(jobs), describeJobs(jobs))
		}
		runsBefore, jobsBefore := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", "")
		if runsBefore != 1 || jobsBefore != 1 {
			t.Fatalf("%d runs and %d jobs, want 1 and 1", runsBefore, jobsBefore)
		}

		// The same key with other arguments is a caller bug: refused, nothing
		// written. (Keys are namespaced per workflow: the stored key is
		// "keyed:" and the key given.)
		key := strings.TrimPrefix(results[0].Run.IdempotencyKey, "keyed:")
		if _, err := e.Enqueue(ctx, "keyed", cartArgs{Customer: "c1", Items: []int{1, 2}, Discount: 0.5}, workflow.EnqueueOptions{
			Key: key}); !errors.Is(err, run.ErrMismatchedArgs) {
			t.Errorf("same key, other args: err %v, want run.ErrMismatchedArgs", err)
		}
		// An explicit key reused by the same workflow with the same args is a duplicate.
		if res, err := e.Enqueue(ctx, "keyed", forms[1], workflow.EnqueueOptions{Key: key}); err != nil || !res.Duplicate || res.Run.ID != id {
			t.Errorf("explicit key, same args: %+v, %v; want a duplicate of %s", res, err, id)
		}
		if r, j := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", ""); r != runsBefore || j != jobsBefore {
			t.Errorf("after refused enqueues: %d runs and %d jobs, want %d and %d", r, j, runsBefore, jobsBefore)
		}

		if r, j := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", ""); r != runsBefore || j != jobsBefore {
			t.Errorf("%d runs and %d jobs, want %d and %d", r, j, runsBefore, jobsBefore)
		}
	})
}

// Explicit keys are namespaced per workflow: a caller's key never collides
// with another workflow's keys, explicit or derived by its strategy.
func TestExplicitKeysAreNamespacedPerWorkflow(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		type orderArgs struct {
			OrderID string `json:"order_id"`
		}
		noop := func(ctx context.Context, sc *steps.Context[orderArgs, noState]) error { return nil }
		payment := workflow.Define("payment", workflow.Options{Key: run.By(func(a orderArgs) (string, error) { return a.OrderID, nil })},
			steps.Do("charge", noop))
		refund := workflow.Define("refund", workflow.Options{}, steps.Do("refund", noop))
		e := newEngine(t, drv, engineConfig(1), payment, refund)
		ctx := ctxT(t)

		// A refund keyed "payment:o-9" must not take the key of payment o-9.
		r1, err := e.Enqueue(ctx, "refund", orderArgs{OrderID: "o-9"}, workflow.EnqueueOptions{Key: "payment:o-9"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.Enqueue(ctx, "payment", orderArgs{OrderID: "o-9"}, workflow.EnqueueOptions{})
		if err != nil || p.Duplicate {
			t.Fatalf("payment o-9 after a refund keyed payment:o-9: %+v, %v; want a new run", p, err)
		}
		// The same explicit key for two workflows is two runs.
		if _, err := e.Enqueue(ctx, "payment", orderArgs{OrderID: "x"}, workflow.EnqueueOptions{Key: "explicit-1"}); err != nil {
			t.Fatal(err)
		}
		r2, err := e.Enqueue(ctx, "refund", orderArgs{OrderID: "y"}, workflow.EnqueueOptions{Key: "explicit-1"})
		if err != nil || r2.Duplicate {
			t.Fatalf("refund keyed explicit-1 after a payment keyed so: %+v, %v; want a new run", r2, err)
		}
		// An explicit key equal to what the workflow's strategy derives names
		// the same run: one namespace per workflow.
		if d, err := e.Enqueue(ctx, "payment", orderArgs{OrderID: "o-9"}, workflow.EnqueueOptions{Key: "o-9"}); err != nil || !d.Duplicate || d.Run.ID != p.Run.ID {
			t.Errorf("payment keyed o-9 explicitly: %+v, %v; want the run of payment o-9", d, err)
		}
		// GetByKey takes the key as given, with the workflow.
		for _, c := range []struct {
			wf, key string
			want    uuid.UUID
		}{{"refund", "payment:o-9", r1.Run.ID}, {"payment", "o-9", p.Run.ID}, {"refund", "explicit-1", r2.Run.ID}} {
			got, err := e.GetByKey(ctx, c.wf, c.key)
			if err != nil || got.ID != c.want {
				t.Errorf("GetByKey(%s, %s) = %v, %v; want run %s", c.wf, c.key, got, err, c.want)
			}
		}
		if _, err := e.GetByKey(ctx, "payment", "explicit-2"); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("GetByKey of an unknown key: %v, want acidic.ErrNotFound", err)
		}
	})
}

// A client that enqueues the same arguments twice (a retried request) must get
// the existing run back, whatever numbers the arguments hold. encoding/json
// writes small and large floats with exponents (1e-07, 1e+21), which
// PostgreSQL's jsonb stores rewritten (0.0000001, 1000000000000000000000).
func TestEnqueueSameArgsTwiceIsDuplicateForAnyNumber(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		keyed := workflow.Define("keyed", workflow.Options{Key: run.ByArgs()}, noop[cartArgs, noState]("only"))
		e := newEngine(t, drv, engineConfig(1), keyed)
		ctx := ctxT(t)
		for _, d := range []float64{0.25, 1e-7, 1e21} {
			args := cartArgs{Customer: "c", Items: []int{1}, Discount: d}
			first, err := e.Enqueue(ctx, "keyed", args, workflow.EnqueueOptions{})
			if err != nil {
				t.Fatalf("Enqueue discount %g: %v", d, err)
			}
			again, err := e.Enqueue(ctx, "keyed", args, workflow.EnqueueOptions{})
			if err != nil {
				t.Errorf("Enqueue discount %g again with the same args: %v (stored args %s)", d, err, first.Run.Args)
				continue
			}
			if !again.Duplicate || again.Run.ID != first.Run.ID {
				t.Errorf("Enqueue discount %g again: duplicate=%v run %s, want duplicate of %s", d, again.Duplicate, again.Run.ID, first.Run.ID)
			}
		}
	})
}

func TestEnqueueBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		wf := workflow.Define("order", workflow.Options{}, noop[orderArgs, orderState]("charge"))
		e := newEngine(t, drv, engineConfig(1), wf)
		ctx := ctxT(t)

		if _, err := e.Enqueue(ctx, "nope", orderArgs{OrderID: "o"}, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) {
			t.Errorf("unregistered workflow: err %v, want ErrUnknownWorkflow", err)
		}
		for _, c := range []struct {
			name string
			args any
		}{
			{"string for an int field", map[string]any{"order_id": "o", "amount": "ten"}},
			{"raw string for an int field", json.RawMessage(`{"order_id":"o","amount":"ten"}`)},
			{"array for a struct", json.RawMessage(`[1,2]`)},
			{"Go slice for a struct", []int{1, 2}},
			{"number for a struct", 42},
			{"invalid JSON", json.RawMessage(`{"order_id":`)},
			{"unencodable value", map[string]any{"c": make(chan int)}},
		} {
			if _, err := e.Enqueue(ctx, "order", c.args, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrArgsDecode) {
				t.Errorf("%s: err %v, want ErrArgsDecode", c.name, err)
			}
		}

		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := e.Enqueue(cancelled, "order", orderArgs{OrderID: "o"}, workflow.EnqueueOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: err %v, want context.Canceled", err)
		}

		if r, j := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", ""); r != 0 || j != 0 {
			t.Errorf("after refused enqueues: %d runs, %d jobs; want none", r, j)
		}

		// A driver on the same store, closed: its pool (PostgreSQL), its
		// connections to the file (SQLite).
		var closedDrv storage.Driver
		var closeDrv func()
		if sd, ok := drv.(*sqlite.Driver); ok {
			other, err := sqlite.Open(ctx, sd.Path(), sqlite.Options{})
			if err != nil {
				t.Fatalf("open the file again: %v", err)
			}
			closedDrv, closeDrv = other, func() { _ = other.Close() }
		} else {
			pool := testdb.Pool(t, testdb.Options{MaxConns: 2})
			closedDrv, closeDrv = postgres.New(pool, postgres.Options{Schema: drv.Schema()}), pool.Close
		}
		closed := newEngine(t, closedDrv, engineConfig(1), workflow.Define("order", workflow.Options{}, noop[orderArgs, orderState]("charge")))
		closeDrv()
		if _, err := closed.Enqueue(ctx, "order", orderArgs{OrderID: "o"}, workflow.EnqueueOptions{}); !errors.Is(err, acidic.ErrClosed) {
			t.Errorf("closed driver: Enqueue err %v, want acidic.ErrClosed", err)
		}
		if _, err := closed.Get(ctx, uuid.New()); !errors.Is(err, acidic.ErrClosed) {
			t.Errorf("closed driver: Get err %v, want acidic.ErrClosed", err)
		}
		if r := countRows(t, drv, "runs", ""); r != 0 {
			t.Errorf("%d runs, want none", r)
		}
	})
}

func TestRegisterRejectsBadDefinitions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		e, err := workflow.NewEngine(drv, engineConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			def  workflow.Definition
		}{
			{"duplicate step names", workflow.Define("dup", workflow.Options{}, noop[orderArgs, orderState]("a"), noop[orderArgs, orderState]("a"))},
			{"no steps", workflow.Define[orderArgs, orderState]("empty", workflow.Options{})},
			{"empty workflow name", workflow.Define("", workflow.Options{}, noop[orderArgs, orderState]("a"))},
			{"blank workflow name", workflow.Define("  ", workflow.Options{}, noop[orderArgs, orderState]("a"))},
			{"empty step name", workflow.Define("nameless", workflow.Options{}, noop[orderArgs, orderState](""))},
			{"nil step function", workflow.Define("nilfn", workflow.Options{}, steps.Do[orderArgs, orderState]("a", nil))},
		} {
			if err := e.Register(c.def); !errors.Is(err, workflow.ErrInvalidDefinition) {
				t.Errorf("%s: Register err %v, want ErrInvalidDefinition", c.name, err)
			}
		}
		// None of them was registered.
		for _, name := range []string{"dup", "empty", "nameless", "nilfn"} {
			if _, err := e.Enqueue(ctxT(t), name, orderArgs{}, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) {
				t.Errorf("Enqueue %s after a refused Register: err %v, want ErrUnknownWorkflow", name, err)
			}
		}

		ok := workflow.Define("ok", workflow.Options{}, noop[orderArgs, orderState]("a"))
		if err := e.Register(ok); err != nil {
			t.Fatalf("Register ok: %v", err)
		}
		if err := e.Register(workflow.Define("ok", workflow.Options{}, noop[cartArgs, noState]("b"))); !errors.Is(err, workflow.ErrAlreadyRegistered) {
			t.Errorf("same name twice: err %v, want ErrAlreadyRegistered", err)
		}
		if err := e.Register(ok); !errors.Is(err, workflow.ErrAlreadyRegistered) {
			t.Errorf("same workflow twice: err %v, want ErrAlreadyRegistered", err)
		}
		// The name of the engine's own job kind is taken too.
		if err := e.Register(workflow.Define(workflow.FinishKind, workflow.Options{}, noop[orderArgs, orderState]("a"))); !errors.Is(err, workflow.ErrAlreadyRegistered) {
			t.Errorf("workflow named %q: err %v, want ErrAlreadyRegistered", workflow.FinishKind, err)
		}
		startEngine(t, e)
		if err := e.Register(workflow.Define("late", workflow.Options{}, noop[orderArgs, orderState]("a"))); !errors.Is(err, workflow.ErrStarted) {
			t.Errorf("Register after Start: err %v, want ErrStarted", err)
		}
	})
}
