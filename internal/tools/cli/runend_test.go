package cli_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// `acidic jobs cancel` of the job that carries a run cancels the run with
// it, in the same transaction: the run does not wait for ever as pending.
func TestJobsCancelOfARunsJobCancelsTheRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		eng, err := workflow.NewEngine(drv, workflow.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Register(workflow.Define("pay", workflow.Options{},
			steps.Do("charge", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error { return nil }))); err != nil {
			t.Fatal(err)
		}
		res, err := eng.Enqueue(ctx, "pay", struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		jobs, err := drv.JobList(ctx, acidic.JobFilter{RunID: res.Run.ID})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("jobs of the run: %v, %v", jobs, err)
		}
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		a.text("jobs", "cancel", strconv.FormatInt(jobs[0].ID, 10))
		r, err := eng.Get(ctx, res.Run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != acidic.RunCancelled || r.SettledAt == nil {
			t.Fatalf("run after acidic jobs cancel: %s (%q), settled %v; want cancelled and settled", r.State, r.Error, r.SettledAt)
		}
	})
}
