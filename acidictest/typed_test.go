package acidictest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// The harness is a workflow.Enqueuer, and a step's context a queue.Enqueuer.
var (
	_ workflow.Enqueuer = (*acidictest.Harness)(nil)
	_ workflow.Enqueuer = (*workflow.Engine)(nil)
	_ queue.Enqueuer    = (*queue.Client)(nil)
	_ queue.Enqueuer    = (*steps.Context[struct{}, struct{}])(nil)
)

type greetArgs struct {
	Name string `json:"name"`
}

// A typed handle enqueues through the harness, which runs the run inline
// as its mode says; a handle the harness's engine lacks writes nothing.
func TestTypedHandleThroughHarness(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		greet := workflow.Define[greetArgs, struct{ Said string }]("greet", workflow.Options{}).
			Step("say", func(_ context.Context, sc *steps.Context[greetArgs, struct{ Said string }]) error {
				sc.State.Said = "hello " + sc.Args.Name
				return nil
			})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Mode: acidictest.Inline}, greet)
		ctx := context.Background()

		res, err := greet.Enqueue(ctx, h, greetArgs{Name: "ada"}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Run.State != acidic.RunSucceeded {
			t.Errorf("inline enqueue left the run %s", res.Run.State)
		}
		r, err := greet.Get(ctx, h.Engine, res.Run.ID)
		if err != nil || r.Attrs.Said != "hello ada" {
			t.Errorf("Get: %+v, %v", r, err)
		}

		stranger := workflow.Define[greetArgs, struct{}]("greet", workflow.Options{}).
			Step("say", func(context.Context, *steps.Context[greetArgs, struct{}]) error { return nil })
		if _, err := stranger.Enqueue(ctx, h, greetArgs{Name: "bob"}, workflow.EnqueueOptions{}); !errors.Is(err, workflow.ErrUnknownWorkflow) {
			t.Errorf("handle of other types through the harness: %v, want ErrUnknownWorkflow", err)
		}
		if n := jobRows(t, h); n != 1 {
			t.Errorf("%d jobs, want only the first run's", n)
		}
	})
}
