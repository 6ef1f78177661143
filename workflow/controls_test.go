package workflow_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// The engine's queue controls act on workflow runs: a run enqueued into a
// paused queue waits (pending, no step run) until the queue is resumed.
func TestEngineQueueControls(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		wf := workflow.Define("controlled", workflow.Options{},
			steps.Do("only", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }))
		eng := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, eng)
		waitFor(t, 20*time.Second, "the engine to read its controls", func() (bool, string) {
			s, _ := eng.Queue().QueueState("default")
			return !s.ControlsReadAt.IsZero(), "not read"
		})

		if _, err := eng.PauseQueue(ctx, "nowhere"); !errors.Is(err, acidic.ErrUnknownQueue) {
			t.Fatalf("PauseQueue(nowhere) = %v, want ErrUnknownQueue", err)
		}
		if ctl, err := eng.PauseQueue(ctx, "default"); err != nil || !ctl.Paused {
			t.Fatalf("PauseQueue(default) = %+v, %v", ctl, err)
		}
		if ctl, err := eng.ScaleQueue(ctx, "default", 3); err != nil || ctl.MaxWorkers != 3 {
			t.Fatalf("ScaleQueue(default, 3) = %+v, %v", ctl, err)
		}
		waitFor(t, 20*time.Second, "the engine to pause and scale", func() (bool, string) {
			s, _ := eng.Queue().QueueState("default")
			return s.Paused && s.MaxWorkers == 3, "not yet"
		})
		res, err := eng.Enqueue(ctx, "controlled", struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		enqueued := time.Now()
		waitFor(t, 20*time.Second, "the engine to read its controls again", func() (bool, string) {
			s, _ := eng.Queue().QueueState("default")
			return s.ControlsReadAt.After(enqueued.Add(60 * time.Millisecond)), "not yet"
		})
		if r, err := eng.Get(ctx, res.Run.ID); err != nil || r.State != acidic.RunPending || len(r.Steps) != 0 {
			t.Fatalf("run in the paused queue: %+v, %v; want pending, no step run", r, err)
		}

		if ctl, err := eng.ResetQueueScale(ctx, "default"); err != nil || ctl.MaxWorkers != 0 || !ctl.Paused {
			t.Fatalf("ResetQueueScale = %+v, %v", ctl, err)
		}
		if ctl, err := eng.ResumeQueue(ctx, "default"); err != nil || ctl.Paused {
			t.Fatalf("ResumeQueue = %+v, %v", ctl, err)
		}
		waitRun(t, eng, res.Run.ID, acidic.RunSucceeded)
		ctls, err := eng.QueueControls(ctx)
		if err != nil || len(ctls) != 1 || ctls[0].Queue != "default" || ctls[0].Paused || ctls[0].MaxWorkers != 0 {
			t.Fatalf("QueueControls = %+v, %v; want default, resumed, unscaled", ctls, err)
		}
	})
}
