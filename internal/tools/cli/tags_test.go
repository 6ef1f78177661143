package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// `acidic jobs list -tag` and `acidic runs list -tag` list the rows that
// carry every tag given; a tag no row can carry is a usage error.
func TestListByTags(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		eng, err := workflow.NewEngine(drv, workflow.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Register(workflow.Define("pay", workflow.Options{},
			steps.Do("charge", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }))); err != nil {
			t.Fatal(err)
		}
		both, err := eng.Queue().Enqueue(ctx, "mail", nil, queue.EnqueueOptions{Tags: []string{"eu", "vip"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Queue().Enqueue(ctx, "mail", nil, queue.EnqueueOptions{Tags: []string{"eu"}}); err != nil {
			t.Fatal(err)
		}
		run, err := eng.Enqueue(ctx, "pay", struct{}{}, workflow.EnqueueOptions{Key: "a", Tags: []string{"vip"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Enqueue(ctx, "pay", struct{}{}, workflow.EnqueueOptions{Key: "b"}); err != nil {
			t.Fatal(err)
		}
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}

		var jobs []cli.JobJSON
		a.json(&jobs, "jobs", "list", "-tag", "eu", "-tag", "vip")
		if len(jobs) != 1 || jobs[0].ID != both.ID || strings.Join(jobs[0].Tags, ",") != "eu,vip" {
			t.Errorf("jobs list -tag eu -tag vip: %+v", jobs)
		}
		a.json(&jobs, "jobs", "list", "-tag", "eu")
		if len(jobs) != 2 {
			t.Errorf("jobs list -tag eu: %d jobs, want 2", len(jobs))
		}
		var runs []cli.RunJSON
		a.json(&runs, "runs", "list", "-tag", "vip")
		if len(runs) != 1 || runs[0].ID != run.Run.ID.String() || strings.Join(runs[0].Tags, ",") != "vip" {
			t.Errorf("runs list -tag vip: %+v", runs)
		}
		if text := a.text("runs", "get", run.Run.ID.String()); !strings.Contains(text, "vip") {
			t.Errorf("runs get shows no tags:\n%s", text)
		}
		for _, cmd := range [][]string{{"jobs", "list", "-tag", ""}, {"runs", "list", "-tag", "a\nb"}} {
			if r := a.run(cmd...); r.code != 2 || !strings.Contains(r.stderr, "tag") {
				t.Errorf("acidic %q: exit %d, stderr %q; want a usage error", cmd, r.code, r.stderr)
			}
		}
	})
}
