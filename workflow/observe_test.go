package workflow_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestStepMiddlewareSeesEachStepOnce: a step middleware runs once around
// every step, inside the step's transaction, and its context reaches the
// step's code. Run events follow the run's life in order.
func TestStepMiddlewareSeesEachStepOnce(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		type key struct{}
		wf := workflow.Define("mw-steps", fastOptions(1),
			noop[profileArgs, noState]("a"),
			steps.Do("b", func(ctx context.Context, sc *steps.Context[profileArgs, noState]) error {
				if ctx.Value(key{}) != "mw" {
					return errors.New("the middleware's context did not reach the step")
				}
				return nil
			}),
			noop[profileArgs, noState]("c"))
		var mu sync.Mutex
		var seen []string
		cfg := engineConfig(1)
		cfg.StepMiddleware = []workflow.StepMiddleware{func(ctx context.Context, s workflow.StepInfo, next func(context.Context) error) error {
			if s.Tx == nil || s.Workflow != "mw-steps" || s.Attempt != 1 {
				return errors.New("bad step info")
			}
			mu.Lock()
			seen = append(seen, s.Step)
			mu.Unlock()
			return next(context.WithValue(ctx, key{}, "mw"))
		}}
		e := newEngine(t, drv, cfg, wf)
		sub := e.Subscribe(events.Options{})
		defer sub.Close()
		startEngine(t, e)
		id := enqueue(t, e, "mw-steps", profileArgs{})
		waitRun(t, e, id, acidic.RunSucceeded)
		mu.Lock()
		if strings.Join(seen, ",") != "a,b,c" {
			t.Fatalf("middleware saw %v", seen)
		}
		mu.Unlock()
		want := []string{"run.started", "step.committed a", "step.committed b", "step.committed c", "run.finished succeeded", "job.completed"}
		var got []string
		for len(got) < len(want) {
			ev := <-sub.C
			if ev.RunID != id {
				continue
			}
			s := string(ev.Kind)
			switch {
			case ev.Step != "":
				s += " " + ev.Step
			case ev.Kind == events.RunFinished:
				s += " " + string(ev.RunState)
			}
			got = append(got, s)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

// TestStepMiddlewarePanicEndsRunRight: a middleware that panics is a step
// panic: the step fails on every attempt, and on the last one the run fails
// with the panic as its reason; the steps before it stay committed.
func TestStepMiddlewarePanicEndsRunRight(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		wf := workflow.Define("mw-panic", fastOptions(2),
			noop[profileArgs, noState]("a"),
			noop[profileArgs, noState]("b"))
		var mu sync.Mutex
		calls := 0
		cfg := engineConfig(1)
		cfg.StepMiddleware = []workflow.StepMiddleware{func(ctx context.Context, s workflow.StepInfo, next func(context.Context) error) error {
			if s.Step == "b" {
				mu.Lock()
				calls++
				mu.Unlock()
				panic("tracing exploded")
			}
			return next(ctx)
		}}
		e := newEngine(t, drv, cfg, wf)
		sub := e.Subscribe(events.Options{Kinds: []events.Kind{events.StepFailed, events.RunFinished}})
		defer sub.Close()
		startEngine(t, e)
		id := enqueue(t, e, "mw-panic", profileArgs{})
		r := waitRun(t, e, id, acidic.RunFailed)
		if !strings.Contains(r.Error, "tracing exploded") || !strings.Contains(r.Error, "attempts exhausted (2 of 2)") {
			t.Fatalf("run error %q", r.Error)
		}
		r = getRun(t, e, id)
		if len(r.Steps) < 1 || r.Steps[0].Name != "a" || r.Steps[0].State != acidic.StepSucceeded {
			t.Fatalf("steps %+v", r.Steps)
		}
		mu.Lock()
		if calls != 2 {
			t.Fatalf("middleware panicked %d times, want 2 (one per attempt)", calls)
		}
		mu.Unlock()
		var kinds []string
		for len(kinds) < 3 {
			ev := <-sub.C
			kinds = append(kinds, string(ev.Kind)+" "+string(ev.RunState))
			if ev.Kind == events.StepFailed && !errors.Is(ev.Err, workflow.ErrPanic) {
				t.Fatalf("step failed with %v, want ErrPanic", ev.Err)
			}
		}
		if strings.Join(kinds, ",") != "step.failed running,step.failed running,run.finished failed" {
			t.Fatalf("events %v", kinds)
		}
	})
}
