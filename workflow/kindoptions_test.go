package workflow_test

import (
	"context"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// Jobs a step stages honour their kind's options (queue.KindOptions) as
// any enqueue does: queue, priority, attempts, uniqueness.
func TestStepStagedJobsHonourKindOptions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cfg := engineConfig(1)
		cfg.Queue.Workers = queue.NewWorkers()
		err := cfg.Queue.Workers.Handle("receipt", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{
			Queue: "mail", Priority: queue.PriorityOf(1), MaxAttempts: 2,
			Unique: &queue.UniqueOptions{ArgKeys: []string{"order"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wf := workflow.Define("checkout", fastOptions(3),
			steps.Do("stage", func(ctx context.Context, sc *steps.Context[stockArgs, struct{}]) error {
				for range 2 {
					if _, err := sc.Enqueue(ctx, "receipt", map[string]int{"order": sc.Args.Order}, queue.EnqueueOptions{}); err != nil {
						return err
					}
				}
				return nil
			}),
		)
		e := newEngine(t, drv, cfg, wf)
		ctx := ctxT(t)
		res, err := e.Enqueue(ctx, "checkout", stockArgs{Order: 5}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drainAll(t, e)
		if r, _ := e.Get(ctx, res.Run.ID); r.State != acidic.RunSucceeded {
			t.Fatalf("run %s", r.State)
		}
		jobs, err := e.Queue().List(ctx, acidic.JobFilter{Kind: "receipt"})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("%d receipt jobs (%v), want 1: the kind is unique by order", len(jobs), err)
		}
		if j := jobs[0]; j.Queue != "mail" || j.Priority != 1 || j.MaxAttempts != 2 {
			t.Fatalf("staged job: queue %q priority %d attempts %d; want the kind's mail, 1, 2", j.Queue, j.Priority, j.MaxAttempts)
		}
	})
}

// A run enqueued at priority 0 runs at 0 even when its workflow's priority
// is not: an unset priority takes the workflow's, 0 does not.
func TestEnqueueAtPriorityZeroOverridesTheWorkflows(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		opts := fastOptions(3)
		opts.Priority = queue.PriorityOf(2)
		wf := workflow.Define("low", opts, steps.Do("only", func(context.Context, *steps.Context[stockArgs, struct{}]) error { return nil }))
		e := newEngine(t, drv, engineConfig(1), wf)
		ctx := ctxT(t)
		for _, c := range []struct {
			given queue.Priority
			want  int
		}{{queue.Priority{}, 2}, {queue.PriorityOf(0), 0}, {queue.PriorityOf(3), 3}} {
			res, err := e.Enqueue(ctx, "low", stockArgs{}, workflow.EnqueueOptions{Priority: c.given})
			if err != nil {
				t.Fatal(err)
			}
			jobs, err := e.Queue().List(ctx, acidic.JobFilter{RunID: res.Run.ID})
			if err != nil || len(jobs) != 1 || jobs[0].Priority != c.want {
				t.Fatalf("enqueued with priority %s: jobs %+v (%v), want one at %d", c.given, jobs, err, c.want)
			}
		}
	})
}
