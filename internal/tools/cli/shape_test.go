package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
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

// jsonKeys returns the JSON keys of a view type, embedded structs flattened.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if f.Anonymous {
			keys = append(keys, jsonKeys(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		keys = append(keys, name)
	}
	return keys
}

var views = []any{
	cli.RunJSON{}, cli.RunDetailJSON{}, cli.StepJSON{}, cli.JobJSON{}, cli.AttemptErrorJSON{}, cli.QueueJSON{},
	cli.MigrationJSON{}, cli.MigrateUpJSON{}, cli.MigrateDownJSON{}, cli.RetryRunsJSON{}, cli.RetryJobsJSON{},
	cli.CronJSON{},
	cli.NodesJSON{}, cli.LeaderJSON{}, cli.NodeJSON{}, cli.NodeQueueJSON{},
	cli.QueueControlJSON{},
	cli.CancelRunsJSON{}, cli.CancelJobsJSON{},
	cli.LogRecordJSON{}, cli.StepFailureJSON{},
}

// TestJSONShapeIsDocumented: every key of -json output is snake_case and
// documented in docs/cli.md.
func TestJSONShapeIsDocumented(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, v := range views {
		for _, k := range jsonKeys(reflect.TypeOf(v)) {
			if !snake.MatchString(k) {
				t.Errorf("%T: key %q is not snake_case", v, k)
			}
			if !strings.Contains(string(doc), "`"+k+"`") {
				t.Errorf("%T: key %q is not in docs/cli.md", v, k)
			}
		}
	}
}

// TestJSONAbsentValuesAreNull: a pending run with no parent, lease, error
// or result, and a job of no run, print those as null, and every key of
// their view is there.
func TestJSONAbsentValuesAreNull(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 2}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		eng, err := workflow.NewEngine(drv, workflow.Config{})
		if err != nil {
			t.Fatal(err)
		}
		job, err := eng.Queue().Enqueue(ctx, "plain", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wf := workflow.Define("shape", workflow.Options{},
			steps.Do("only", func(context.Context, *steps.Context[struct{}, struct{}]) error { return nil }))
		if err := eng.Register(wf); err != nil {
			t.Fatal(err)
		}
		res, err := eng.Enqueue(ctx, "shape", struct{}{}, workflow.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}

		// decode runs the command with -json and checks that the keys of its
		// output are those of view.
		decode := func(view any, args ...string) map[string]any {
			t.Helper()
			var got map[string]any
			out := a.text(append([]string{"-json"}, args...)...)
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			want := jsonKeys(reflect.TypeOf(view))
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("%s -json: keys %v, want %v", strings.Join(args, " "), keys, want)
			}
			return got
		}
		nulls := func(what string, got map[string]any, keys ...string) {
			t.Helper()
			for _, k := range keys {
				if v, ok := got[k]; !ok || v != nil {
					t.Errorf("%s -json: %s is %v, want null", what, k, v)
				}
			}
		}
		got := decode(cli.JobJSON{}, "jobs", "get", itoa(job.ID))
		nulls("jobs get", got, "run_id", "attempted_at", "attempted_by", "finalized_at", "unique_key")
		for _, k := range []string{"errors", "depends_on"} {
			if v, ok := got[k].([]any); !ok || len(v) != 0 {
				t.Errorf("jobs get -json: %s is %v, want []", k, got[k])
			}
		}
		got = decode(cli.RunDetailJSON{}, "runs", "get", res.Run.ID.String())
		nulls("runs get", got, "parent_run_id", "parent_step", "error", "result", "locked_by", "locked_at", "last_run_at", "finished_at")
		if v, ok := got["steps"].([]any); !ok || len(v) != 0 {
			t.Errorf("runs get -json: steps is %v, want []", got["steps"])
		}
		if got["id"] != res.Run.ID.String() || got["state"] != "pending" || got["recovery_point"] != "only" {
			t.Errorf("runs get -json: %v", got)
		}
	})
}
