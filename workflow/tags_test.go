package workflow_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// Tags set at enqueue are kept on the run (not its jobs) and on plain jobs;
// List filters by them (every tag given must match); bad tags are
// ErrInvalid and write nothing, neither run nor job.
func TestTagsAtEnqueue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		wf := workflow.Define("tagged", workflow.Options{},
			steps.Do("only", func(context.Context, *steps.Context[logArgs, logState]) error { return nil }))
		e := newEngine(t, drv, engineConfig(1), wf)
		res, err := e.Enqueue(ctx, "tagged", logArgs{N: 1}, workflow.EnqueueOptions{Tags: []string{"eu", "vip"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Enqueue(ctx, "tagged", logArgs{N: 2}, workflow.EnqueueOptions{Tags: []string{"eu"}}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Run.Tags, []string{"eu", "vip"}) || !slices.Equal(getRun(t, e, res.Run.ID).Tags, []string{"eu", "vip"}) {
			t.Errorf("run tags %v", res.Run.Tags)
		}
		if jobs := jobsOf(t, drv, res.Run.ID, ""); len(jobs) != 1 || jobs[0].Tags != nil {
			t.Errorf("the run's job: %+v; want one job without tags", jobs)
		}
		list := func(tags ...string) int {
			runs, err := e.List(ctx, acidic.RunFilter{Tags: tags})
			if err != nil {
				t.Fatal(err)
			}
			return len(runs)
		}
		if n1, n2, n3 := list("eu"), list("eu", "vip"), list("vip", "us"); n1 != 2 || n2 != 1 || n3 != 0 {
			t.Errorf("runs tagged eu %d, eu+vip %d, vip+us %d; want 2, 1, 0", n1, n2, n3)
		}
		j, err := e.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{Tags: []string{"batch-7"}})
		if err != nil || !slices.Equal(j.Tags, []string{"batch-7"}) {
			t.Fatalf("job tags %v (%v)", j, err)
		}
		jobs, err := e.Queue().List(ctx, acidic.JobFilter{Tags: []string{"batch-7"}})
		if err != nil || len(jobs) != 1 || jobs[0].ID != j.ID {
			t.Errorf("jobs tagged batch-7: %v (%v)", jobs, err)
		}

		runsBefore, jobsBefore := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", "")
		for _, tags := range [][]string{{""}, {"a", "a"}, {strings.Repeat("x", storage.MaxTagBytes+1)}, make([]string, storage.MaxTags+1)} {
			if _, err := e.Enqueue(ctx, "tagged", logArgs{N: 3}, workflow.EnqueueOptions{Tags: tags}); !errors.Is(err, workflow.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("Enqueue with tags %q: %v, want ErrInvalid", tags, err)
			}
			if _, err := e.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{Tags: tags}); !errors.Is(err, queue.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("queue Enqueue with tags %q: %v, want ErrInvalid", tags, err)
			}
		}
		if r, j := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", ""); r != runsBefore || j != jobsBefore {
			t.Errorf("refused enqueues wrote: runs %d -> %d, jobs %d -> %d", runsBefore, r, jobsBefore, j)
		}
	})
}
