package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type profileArgs struct {
	User string `json:"user"`
}

type profileState struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Tags   []string          `json:"tags"`
	Extra  map[string]string `json:"extra,omitempty"`
	Poison string            `json:"poison,omitempty"`
}

// State set by one step is what later steps see, across a retry; state
// changed by a step that failed is thrown away with the step.
func TestStateIsPersistedByCommittedStepsOnly(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var mu sync.Mutex
		var flakySaw []profileState // the state step "flaky" saw on each attempt
		wf := workflow.Define("profile", fastOptions(5),
			steps.Do("set", func(ctx context.Context, sc *steps.Context[profileArgs, profileState]) error {
				sc.State.Name = "name-of-" + sc.Args.User
				sc.State.Count = 42
				sc.State.Tags = []string{"x", "y"}
				return nil
			}),
			steps.Do("flaky", func(ctx context.Context, sc *steps.Context[profileArgs, profileState]) error {
				mu.Lock()
				flakySaw = append(flakySaw, clone(*sc.State))
				first := len(flakySaw) == 1
				mu.Unlock()
				if first {
					// Changes made before failing must not survive.
					sc.State.Poison = "from the failed attempt"
					sc.State.Count = -1
					sc.State.Tags = append(sc.State.Tags, "poisoned")
					return errors.New("flaky failed")
				}
				sc.State.Extra = map[string]string{"seen": "yes"}
				return nil
			}),
			steps.Do("read", func(ctx context.Context, sc *steps.Context[profileArgs, profileState]) error {
				return sc.SetResult(sc.State)
			}),
		)
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		id := enqueue(t, e, "profile", profileArgs{User: "alice"})
		r := waitSucceeded(t, e, id)

		committed := profileState{Name: "name-of-alice", Count: 42, Tags: []string{"x", "y"}}
		mu.Lock()
		if len(flakySaw) != 2 {
			t.Fatalf("flaky ran %d times, want 2", len(flakySaw))
		}
		for i, s := range flakySaw {
			if !reflect.DeepEqual(s, committed) {
				t.Errorf("flaky attempt %d saw state %+v, want %+v", i+1, s, committed)
			}
		}
		mu.Unlock()

		want := committed
		want.Extra = map[string]string{"seen": "yes"}
		var result profileState
		if err := json.Unmarshal(r.Result, &result); err != nil {
			t.Fatalf("run result %s: %v", r.Result, err)
		}
		if !reflect.DeepEqual(result, want) {
			t.Errorf("run result %+v, want %+v", result, want)
		}
		var attrs profileState
		if err := json.Unmarshal(r.Attrs, &attrs); err != nil || !reflect.DeepEqual(attrs, want) {
			t.Errorf("stored state %s (%v), want %+v", r.Attrs, err, want)
		}
		if s := stepLog(t, r, "flaky"); s.Executions != 2 || s.Attempt != 2 {
			t.Errorf("flaky step log: %d executions, attempt %d; want 2 and 2", s.Executions, s.Attempt)
		}
		if s := stepLog(t, r, "read"); string(s.Result) == "" {
			t.Errorf("read step log has no result")
		}
	})
}

func clone(s profileState) profileState {
	b, _ := json.Marshal(s)
	var c profileState
	_ = json.Unmarshal(b, &c)
	return c
}

// A step's idempotency key is the same on every attempt of that step, and
// differs between steps.
func TestStepIdempotencyKeyIsStableAcrossRetries(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var mu sync.Mutex
		keys := map[string][]string{}
		attempts := map[string][]int{}
		step := func(name string, failures int) steps.Step[profileArgs, noState] {
			return steps.Do(name, func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				mu.Lock()
				keys[name] = append(keys[name], sc.IdempotencyKey())
				attempts[name] = append(attempts[name], sc.Attempt())
				n := len(keys[name])
				mu.Unlock()
				if n <= failures {
					return errors.New(name + " gateway timeout")
				}
				return nil
			})
		}
		wf := workflow.Define("keys", fastOptions(5), step("charge", 2), step("refund", 1))
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		id := enqueue(t, e, "keys", profileArgs{User: "bob"})
		waitSucceeded(t, e, id)

		mu.Lock()
		defer mu.Unlock()
		for name, want := range map[string]int{"charge": 3, "refund": 2} {
			if len(keys[name]) != want {
				t.Fatalf("step %s ran %d times, want %d", name, len(keys[name]), want)
			}
			for i, k := range keys[name] {
				if k != id.String()+"/"+name {
					t.Errorf("step %s attempt %d: key %q, want %q", name, i+1, k, id.String()+"/"+name)
				}
			}
		}
		if keys["charge"][0] == keys["refund"][0] {
			t.Errorf("two steps share the key %q", keys["charge"][0])
		}
		// The key is stable although the job attempt changed.
		if a := attempts["charge"]; a[0] == a[len(a)-1] {
			t.Errorf("charge attempts %v: the retries did not run on new job attempts", a)
		}
	})
}
