package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type stockArgs struct {
	Order int `json:"order"`
}

// iterState is AcidicJob's `providing: { collection: [1..5] }`.
type iterState struct {
	Collection []int `json:"collection"`
	Done       []int `json:"done"`
}

// iterate's first step records the state it saw; a for-each walks the
// collection given at enqueue.
func iterate(saw *[]iterState) *workflow.Workflow[stockArgs, iterState] {
	return workflow.Define("iterate", fastOptions(3),
		steps.Do("look", func(ctx context.Context, sc *steps.Context[stockArgs, iterState]) error {
			*saw = append(*saw, *sc.State)
			return nil
		}),
		steps.ForEach("each", func(sc *steps.Context[stockArgs, iterState]) ([]int, error) { return sc.State.Collection, nil },
			func(ctx context.Context, sc *steps.Context[stockArgs, iterState], item int) error {
				sc.State.Done = append(sc.State.Done, item*10)
				return nil
			}, steps.ForEachOptions{}),
	)
}

// drainAll works the engine's queue in the test's goroutine until nothing
// is left.
func drainAll(t *testing.T, e *workflow.Engine) {
	t.Helper()
	if _, err := e.Queue().Drain(ctxT(t), queue.DefaultQueue, queue.DrainOptions{WithScheduled: true}); err != nil {
		t.Fatal(err)
	}
}

// The state given at enqueue is stored with the run and seen by its first
// step; the typed WithState and EnqueueOptions.State (a value or its JSON)
// do the same.
func TestInitialStateIsSeenByTheFirstStep(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var saw []iterState
		wf := iterate(&saw)
		e := newEngine(t, drv, engineConfig(1), wf)
		ctx := ctxT(t)
		for i, opts := range []workflow.EnqueueOptions{
			wf.WithState(workflow.EnqueueOptions{}, iterState{Collection: []int{1, 2, 3, 4, 5}}),
			{State: iterState{Collection: []int{1, 2, 3, 4, 5}}},
			{State: json.RawMessage(`{"collection":[1,2,3,4,5]}`)},
		} {
			saw = nil
			res, err := e.Enqueue(ctx, "iterate", stockArgs{Order: i}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqualT(t, res.Run.Attrs, `{"collection":[1,2,3,4,5],"done":null}`) && !jsonEqualT(t, res.Run.Attrs, `{"collection":[1,2,3,4,5]}`) {
				t.Errorf("case %d: stored state %s, want the collection", i, res.Run.Attrs)
			}
			drainAll(t, e)
			r, err := e.Get(ctx, res.Run.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != acidic.RunSucceeded || len(saw) != 1 || !slices.Equal(saw[0].Collection, []int{1, 2, 3, 4, 5}) {
				t.Fatalf("case %d: run %s, first step saw %+v; want the collection", i, r.State, saw)
			}
			var final iterState
			if err := json.Unmarshal(r.Attrs, &final); err != nil || !slices.Equal(final.Done, []int{10, 20, 30, 40, 50}) {
				t.Fatalf("case %d: final state %s, want every item done", i, r.Attrs)
			}
		}
		// No state: S's zero value.
		saw = nil
		res, err := e.Enqueue(ctx, "iterate", stockArgs{Order: 99}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drainAll(t, e)
		if r, _ := e.Get(ctx, res.Run.ID); r.State != acidic.RunSucceeded || len(saw) != 1 || saw[0].Collection != nil {
			t.Fatalf("without state: run %s, first step saw %+v; want the zero state", r.State, saw)
		}
	})
}

// A child run awaited by a step gets its initial state too.
func TestInitialStateOfAwaitedChild(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var saw []iterState
		child := iterate(&saw)
		parent := workflow.Define("parent", fastOptions(3),
			steps.AwaitRuns[stockArgs, struct{}]("spawn", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "iterate", Args: stockArgs{Order: 1}, State: iterState{Collection: []int{7}}}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[stockArgs, struct{}]) error { return nil }),
		)
		e := newEngine(t, drv, engineConfig(1), child, parent)
		ctx := ctxT(t)
		res, err := e.Enqueue(ctx, "parent", stockArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drainAll(t, e)
		if r, _ := e.Get(ctx, res.Run.ID); r.State != acidic.RunSucceeded || len(saw) != 1 || !slices.Equal(saw[0].Collection, []int{7}) {
			t.Fatalf("parent %s; child's first step saw %+v, want collection [7]", r.State, saw)
		}
	})
}

// The initial state is not part of a run's identity: an enqueue whose key
// names an existing run with the same arguments returns that run as it is,
// whatever state it gives. Other arguments are still ErrMismatchedArgs.
func TestInitialStateOfADuplicateIsIgnored(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var saw []iterState
		e := newEngine(t, drv, engineConfig(1), iterate(&saw))
		ctx := ctxT(t)
		first, err := e.Enqueue(ctx, "iterate", stockArgs{Order: 1}, workflow.EnqueueOptions{Key: "order-1", State: iterState{Collection: []int{1}}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := e.Enqueue(ctx, "iterate", stockArgs{Order: 1}, workflow.EnqueueOptions{Key: "order-1", State: iterState{Collection: []int{2, 3}}})
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.Run.ID != first.Run.ID || !jsonEqualT(t, again.Run.Attrs, string(first.Run.Attrs)) {
			t.Fatalf("duplicate with another state: %+v, want the first run, its state untouched", again)
		}
		if _, err := e.Enqueue(ctx, "iterate", stockArgs{Order: 2}, workflow.EnqueueOptions{Key: "order-1", State: iterState{Collection: []int{1}}}); !errors.Is(err, run.ErrMismatchedArgs) {
			t.Fatalf("same key, other args: %v, want ErrMismatchedArgs", err)
		}
		drainAll(t, e)
		if len(saw) != 1 || !slices.Equal(saw[0].Collection, []int{1}) {
			t.Fatalf("first step saw %+v, want the first enqueue's state only", saw)
		}
	})
}

// State that does not encode, or does not decode into the workflow's state
// type, is ErrStateDecode, and nothing is written.
func TestInitialStateThatDoesNotDecodeWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var saw []iterState
		e := newEngine(t, drv, engineConfig(1), iterate(&saw))
		ctx := ctxT(t)
		for name, state := range map[string]any{
			"wrong type":      map[string]string{"collection": "not a list"},
			"a number":        42,
			"does not encode": make(chan int),
			"invalid JSON":    json.RawMessage(`{"collection":`),
		} {
			if _, err := e.Enqueue(ctx, "iterate", stockArgs{}, workflow.EnqueueOptions{State: state}); !errors.Is(err, workflow.ErrStateDecode) {
				t.Errorf("%s: %v, want ErrStateDecode", name, err)
			}
		}
		if runs, err := e.List(ctx, acidic.RunFilter{}); err != nil || len(runs) != 0 {
			t.Fatalf("bad state wrote %d runs (%v)", len(runs), err)
		}
		if jobs, err := e.Queue().List(ctx, acidic.JobFilter{}); err != nil || len(jobs) != 0 {
			t.Fatalf("bad state wrote %d jobs (%v)", len(jobs), err)
		}
	})
}

func jsonEqualT(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}
