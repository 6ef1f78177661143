package cli_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/internal/tools/cli"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// TestRunsRetryByFilter fails runs of two workflows and cancels one, then
// resumes them by filter: the runs the filter names become pending with a
// job, the others are untouched, and the command reports what it did.
func TestRunsRetryByFilter(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		type nArgs struct {
			N int `json:"n"`
		}
		failing := func(name string) workflow.Definition {
			return workflow.Define(name, workflow.Options{MaxAttempts: 1},
				steps.Do("call", func(context.Context, *steps.Context[nArgs, struct{}]) error { return errors.New("gateway down") }))
		}
		fine := workflow.Define("fine", workflow.Options{},
			steps.Do("call", func(context.Context, *steps.Context[nArgs, struct{}]) error { return nil }))
		eng := enginetest.New(t, drv, enginetest.Config(1), failing("flaky"), failing("other"), fine)
		if _, err := eng.Enqueue(ctx, "fine", nArgs{}, workflow.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		var flaky, other []uuid.UUID
		for i := range 5 {
			for _, name := range []string{"flaky", "other"} {
				res, err := eng.Enqueue(ctx, name, nArgs{N: i}, workflow.EnqueueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if name == "flaky" {
					flaky = append(flaky, res.Run.ID)
				} else {
					other = append(other, res.Run.ID)
				}
			}
		}
		if _, err := eng.Queue().Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
			t.Fatal(err)
		}
		parked, err := eng.Enqueue(ctx, "flaky", nArgs{N: 99}, workflow.EnqueueOptions{Queue: "parked"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Cancel(ctx, parked.Run.ID); err != nil {
			t.Fatal(err)
		}
		state := func(id uuid.UUID) acidic.RunState {
			t.Helper()
			r, err := eng.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return r.State
		}
		for _, id := range append(slices.Clone(flaky), other...) {
			if s := state(id); s != acidic.RunFailed {
				t.Fatalf("set-up: run %s is %s, want failed", id, s)
			}
		}
		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}

		// Only failed runs of flaky: the cancelled one stays.
		var res cli.RetryRunsJSON
		a.json(&res, "runs", "retry", "-workflow", "flaky", "-state", "failed")
		var ids []string
		for _, r := range res.Retried {
			ids = append(ids, r.ID)
			if r.State != "pending" || r.Workflow != "flaky" {
				t.Errorf("retried run %s is %s of %s, want pending of flaky", r.ID, r.State, r.Workflow)
			}
		}
		var want []string
		for _, id := range flaky {
			want = append(want, id.String())
		}
		if res.Matched != 5 || res.Skipped != 0 || !slices.Equal(ids, want) {
			t.Errorf("runs retry -workflow flaky -state failed: %+v, want the 5 failed flaky runs", res)
		}
		for _, id := range flaky {
			if s := state(id); s != acidic.RunPending {
				t.Errorf("run %s is %s after the retry, want pending", id, s)
			}
			jobs, err := eng.Queue().List(ctx, acidic.JobFilter{RunID: id, States: []acidic.JobState{acidic.JobAvailable}})
			if err != nil || len(jobs) != 1 {
				t.Errorf("run %s has %d available jobs (%v), want 1", id, len(jobs), err)
			}
		}
		for _, id := range append(slices.Clone(other), parked.Run.ID) {
			if s := state(id); s != acidic.RunFailed && s != acidic.RunCancelled {
				t.Errorf("run %s not named by the filter is %s", id, s)
			}
		}

		// The default states (failed, cancelled) of the other workflow, as text.
		out := a.text("runs", "retry", "-workflow", "other")
		if out != "retried 5 of 5 matching runs (0 skipped: no longer retryable)\n" {
			t.Errorf("runs retry -workflow other printed %q", out)
		}
		// The cancelled flaky run is retried by default; pending ones are not
		// matched.
		res = cli.RetryRunsJSON{}
		a.json(&res, "runs", "retry", "-workflow", "flaky")
		if res.Matched != 1 || len(res.Retried) != 1 || res.Retried[0].ID != parked.Run.ID.String() {
			t.Errorf("runs retry -workflow flaky: %+v, want the cancelled run alone", res)
		}
		// Runs that cannot be retried are skipped, not an error.
		res = cli.RetryRunsJSON{}
		a.json(&res, "runs", "retry", "-state", "succeeded")
		if res.Matched != 1 || res.Retried == nil || len(res.Retried) != 0 || res.Skipped != 1 {
			t.Errorf("runs retry -state succeeded: %+v, want one run matched and skipped, retried: []", res)
		}
		res = cli.RetryRunsJSON{}
		a.json(&res, "runs", "retry", "-workflow", "nobody")
		if res.Matched != 0 || res.Retried == nil || res.Skipped != 0 {
			t.Errorf("runs retry -workflow nobody: %+v, want nothing matched, retried: []", res)
		}
	})
}

// TestJobsRetryByFilter cancels and discards more jobs than one progress
// step, retries them by queue and kind, and checks the jobs, the report and
// the plain progress counts on stderr (which is not a terminal).
func TestJobsRetryByFilter(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		client, err := queue.New(drv, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		const n = 150
		var mail []int64
		for i := range n {
			j, err := client.Enqueue(ctx, "send", map[string]int{"i": i}, queue.EnqueueOptions{Queue: "mail"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.Cancel(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
			mail = append(mail, j.ID)
		}
		waiting, err := client.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "mail"})
		if err != nil {
			t.Fatal(err)
		}
		elsewhere, err := client.Enqueue(ctx, "send", nil, queue.EnqueueOptions{Queue: "sms"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Cancel(ctx, elsewhere.ID); err != nil {
			t.Fatal(err)
		}

		a := shell{t: t, ctx: ctx, base: dbFlags(drv)}
		r := a.run("-json", "jobs", "retry", "-queue", "mail", "-kind", "send")
		if r.code != 0 {
			t.Fatalf("jobs retry -queue mail: exit %d\n%s", r.code, r.stderr)
		}
		var res cli.RetryJobsJSON
		decodeStrict(t, r.stdout, &res)
		var ids []int64
		for _, j := range res.Retried {
			ids = append(ids, j.ID)
		}
		if res.Matched != n+1 || res.Skipped != 1 || !slices.Equal(ids, mail) {
			t.Errorf("jobs retry -queue mail: matched %d, skipped %d, retried %v; want %d, 1 (the waiting job) and %v", res.Matched, res.Skipped, ids, n+1, mail)
		}
		if want := fmt.Sprintf("retrying jobs: 100/%d\nretrying jobs: %d/%d\n", n+1, n+1, n+1); r.stderr != want {
			t.Errorf("progress on stderr %q, want %q", r.stderr, want)
		}
		jobs, err := client.List(ctx, acidic.JobFilter{Queue: "mail", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.State != acidic.JobAvailable {
				t.Errorf("job %d of mail is %s after the retry, want available", j.ID, j.State)
			}
		}
		if j, err := client.Get(ctx, elsewhere.ID); err != nil || j.State != acidic.JobCancelled {
			t.Errorf("job of sms: %v %v, want it still cancelled", j, err)
		}
		if j, err := client.Get(ctx, waiting.ID); err != nil || j.Attempt != 0 {
			t.Errorf("the waiting job: %v %v", j, err)
		}

		// A small batch prints no progress, and the text report.
		out := a.text("jobs", "retry", "-queue", "sms", "-state", "cancelled")
		if out != "retried 1 of 1 matching jobs (0 skipped: not in a state that can be retried)\n" {
			t.Errorf("jobs retry -queue sms printed %q", out)
		}
		if strings.Contains(out, "retrying") {
			t.Errorf("progress on stdout: %q", out)
		}
	})
}
