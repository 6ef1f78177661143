package steps_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
)

type args struct{ N int }
type state struct{ Seen []string }

func TestControlResults(t *testing.T) {
	t.Parallel()
	reason := errors.New("no stock")
	cases := []struct {
		err   error
		kind  steps.ControlKind
		delay time.Duration
		text  string
	}{
		{steps.Halt(), steps.KindHalt, 0, "steps: halt"},
		{steps.Repeat(), steps.KindRepeat, 0, "steps: repeat"},
		{steps.Snooze(10 * time.Millisecond), steps.KindSnooze, 10 * time.Millisecond, "steps: snooze 10ms"},
		{steps.Cancel(reason), steps.KindCancel, 0, "steps: cancel: no stock"},
		{steps.Cancel(nil), steps.KindCancel, 0, "steps: cancel"},
	}
	for _, c := range cases {
		// A step may wrap the control; it is still found.
		for _, err := range []error{c.err, fmt.Errorf("step x: %w", c.err)} {
			ctl, ok := steps.AsControl(err)
			if !ok {
				t.Errorf("AsControl(%v) found no control", err)
				continue
			}
			if ctl.Kind() != c.kind || ctl.Delay() != c.delay {
				t.Errorf("%v: kind %v delay %v, want %v %v", err, ctl.Kind(), ctl.Delay(), c.kind, c.delay)
			}
		}
		if c.err.Error() != c.text {
			t.Errorf("Error() = %q, want %q", c.err.Error(), c.text)
		}
	}
	if !errors.Is(steps.Cancel(reason), reason) {
		t.Error("a Cancel does not unwrap to its reason")
	}
	if ctl, _ := steps.AsControl(steps.Cancel(reason)); ctl.Reason() != reason {
		t.Errorf("Reason() = %v", ctl.Reason())
	}
	for _, err := range []error{nil, errors.New("plain"), context.Canceled} {
		if ctl, ok := steps.AsControl(err); ok {
			t.Errorf("AsControl(%v) = %v, want none", err, ctl)
		}
	}
}

func noop(context.Context, *steps.Context[args, state]) error { return nil }

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := []steps.Step[args, state]{steps.Do("a", noop), steps.Do("b", noop)}
	if err := steps.Validate(ok); err != nil {
		t.Errorf("Validate(a, b): %v", err)
	}
	for name, list := range map[string][]steps.Step[args, state]{
		"none":           nil,
		"empty name":     {steps.Do("a", noop), steps.Do("", noop)},
		"nil function":   {steps.Do[args, state]("a", nil)},
		"duplicate":      {steps.Do("a", noop), steps.Do("b", noop), steps.Do("a", noop)},
		"duplicate pair": {steps.Do("x", noop), steps.Do("x", noop)},
	} {
		if err := steps.Validate(list); !errors.Is(err, steps.ErrInvalid) {
			t.Errorf("%s: Validate err %v, want ErrInvalid", name, err)
		}
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	runID := uuid.New()
	sc := steps.NewContext[args, state](steps.Env{RunID: runID, Workflow: "wf", Step: "charge", Attempt: 3}, args{N: 7}, nil)
	if sc.State == nil {
		t.Fatal("NewContext with a nil state gives a nil State")
	}
	if sc.Args.N != 7 || sc.RunID() != runID || sc.Step() != "charge" || sc.Attempt() != 3 {
		t.Errorf("context: args %+v run %s step %s attempt %d", sc.Args, sc.RunID(), sc.Step(), sc.Attempt())
	}
	if k := sc.IdempotencyKey(); k != runID.String()+"/charge" {
		t.Errorf("IdempotencyKey() = %q", k)
	}
	if sc.Logger() == nil {
		t.Error("no logger")
	}
	if sc.Result() != nil {
		t.Errorf("Result() before SetResult = %s", sc.Result())
	}
	if err := sc.SetResult(map[string]int{"b": 2, "a": 1}); err != nil {
		t.Fatal(err)
	}
	if string(sc.Result()) != `{"a":1,"b":2}` {
		t.Errorf("Result() = %s", sc.Result())
	}
	if err := sc.SetResult(make(chan int)); err == nil {
		t.Error("SetResult of an unencodable value succeeded")
	}
	if _, err := sc.Enqueue(context.Background(), "k", nil, queue.EnqueueOptions{}); err == nil {
		t.Error("Enqueue without Env.Enqueue succeeded")
	}
	st := &state{Seen: []string{"x"}}
	if sc := steps.NewContext(steps.Env{}, args{}, st); sc.State != st {
		t.Error("NewContext does not use the given state")
	}
}

func TestForEachWorksOneBatchPerCall(t *testing.T) {
	t.Parallel()
	items := []string{"a", "b", "c", "d", "e"}
	runID := uuid.New()
	var keys []string
	step := steps.ForEach("items",
		func(*steps.Context[args, state]) ([]string, error) { return items, nil },
		func(ctx context.Context, sc *steps.Context[args, state], item string) error {
			sc.State.Seen = append(sc.State.Seen, item)
			keys = append(keys, sc.IdempotencyKey())
			return nil
		}, steps.ForEachOptions{BatchSize: 2})

	var seen []string
	cursor := int64(0)
	for calls := 1; ; calls++ {
		st := &state{}
		sc := steps.NewContext(steps.Env{RunID: runID, Step: "items", Cursor: cursor}, args{}, st)
		err := step.Run(context.Background(), sc)
		seen = append(seen, st.Seen...)
		ctl, isControl := steps.AsControl(err)
		if err != nil && (!isControl || ctl.Kind() != steps.KindRepeat) {
			t.Fatalf("call %d: %v", calls, err)
		}
		if next := sc.NextCursor(); next <= cursor || next > int64(len(items)) {
			t.Fatalf("call %d at cursor %d: next cursor %d", calls, cursor, next)
		}
		cursor = sc.NextCursor()
		if err == nil {
			if calls != 3 {
				t.Errorf("%d calls for 5 items in batches of 2, want 3", calls)
			}
			break
		}
		if calls > 5 {
			t.Fatal("ForEach never finished")
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(items) {
		t.Errorf("items worked %v, want %v", seen, items)
	}
	for i, k := range keys {
		if want := fmt.Sprintf("%s/items/%d", runID, i); k != want {
			t.Errorf("item %d: key %q, want %q", i, k, want)
		}
	}
}

// An item that snoozes or repeats keeps the items before it done and is
// itself next: the cursor saved with the step points at it, not at the
// start of the batch (which would run the earlier items again). Halt from an
// item is invalid: it would skip the items after it.
func TestForEachItemControlKeepsTheItemsBeforeIt(t *testing.T) {
	t.Parallel()
	items := []string{"a", "b", "c", "d", "e", "f"}
	for _, c := range []struct {
		name    string
		control error
	}{
		{"snooze", steps.Snooze(time.Second)},
		{"repeat", steps.Repeat()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			step := steps.ForEach("items",
				func(*steps.Context[args, state]) ([]string, error) { return items, nil },
				func(ctx context.Context, sc *steps.Context[args, state], item string) error {
					if item == "d" {
						return c.control
					}
					sc.State.Seen = append(sc.State.Seen, item)
					return nil
				}, steps.ForEachOptions{BatchSize: 4})
			st := &state{}
			sc := steps.NewContext(steps.Env{RunID: uuid.New(), Step: "items", Cursor: 1}, args{}, st)
			err := step.Run(context.Background(), sc)
			if !errors.Is(err, c.control) {
				t.Fatalf("err = %v, want the item's control", err)
			}
			if got := sc.NextCursor(); got != 3 {
				t.Errorf("next cursor %d, want 3 (items 1 and 2 done, item 3 next)", got)
			}
			if sc.Cursor() != 1 {
				t.Errorf("Cursor() = %d after the step, want the start, 1", sc.Cursor())
			}
			if fmt.Sprint(st.Seen) != "[b c]" {
				t.Errorf("items worked %v, want [b c]", st.Seen)
			}
		})
	}
	halting := steps.ForEach("items",
		func(*steps.Context[args, state]) ([]string, error) { return items, nil },
		func(context.Context, *steps.Context[args, state], string) error { return steps.Halt() },
		steps.ForEachOptions{})
	err := halting.Run(context.Background(), steps.NewContext(steps.Env{RunID: uuid.New(), Step: "items"}, args{}, &state{}))
	if !errors.Is(err, steps.ErrInvalid) {
		t.Fatalf("Halt from an item: %v, want ErrInvalid", err)
	}
	if _, isControl := steps.AsControl(err); isControl {
		t.Errorf("Halt from an item still reads as a control result: %v", err)
	}
}
