package acidictest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type args struct {
	N int `json:"n"`
}

func fanOut() []workflow.Definition {
	child := workflow.Define("child", workflow.Options{Queue: "other"},
		steps.Do("double", func(ctx context.Context, sc *steps.Context[args, struct{}]) error {
			return sc.SetResult(sc.Args.N * 2)
		}))
	flaky := 0
	parent := workflow.Define("parent", workflow.Options{Backoff: func(int, error) time.Duration { return time.Hour }},
		steps.Await("spawn", func(ctx context.Context, sc *steps.Context[args, struct{}]) ([]steps.RunRequest, error) {
			return []steps.RunRequest{{Workflow: "child", Args: args{N: sc.Args.N}}, {Workflow: "child", Args: args{N: 1}}}, nil
		}, steps.AwaitOptions{}),
		steps.Do("flaky", func(ctx context.Context, sc *steps.Context[args, struct{}]) error {
			if flaky++; flaky == 1 {
				return errors.New("first try fails; retried an hour later")
			}
			_, err := sc.Enqueue(ctx, "notify", args{N: sc.Args.N}, queue.EnqueueOptions{})
			return err
		}))
	return []workflow.Definition{child, parent}
}

func TestPerformRunsAWorkflowAcrossQueuesAndRetries(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		h := acidictest.New(t, acidictest.Options{Driver: drv}, fanOut()...)
		_ = h.Workers.Handle("notify", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		r, err := h.Perform(context.Background(), "parent", args{N: 21})
		if err != nil {
			t.Fatal(err)
		}
		if r.State != acidic.RunSucceeded || len(r.Steps) != 2 || r.Steps[1].Executions != 2 {
			t.Fatalf("run %s, steps %+v", r.State, r.Steps)
		}
		h.RequireNotEnqueued(acidictest.JobFilter{})
		done := h.AllEnqueued(acidictest.JobFilter{Kind: "notify", States: []acidic.JobState{acidic.JobCompleted}, Args: map[string]int{"n": 21}})
		if len(done) != 1 {
			t.Fatalf("%d completed notify jobs with n=21, want 1", len(done))
		}
	})
}

func TestManualModeStoresAndInlineUntilDoneRuns(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		manual := acidictest.New(t, acidictest.Options{Driver: drv}, fanOut()...)
		res, err := manual.Enqueue(ctx, "parent", args{N: 2}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		job := manual.RequireEnqueued(acidictest.JobFilter{Kind: "parent", RunID: res.Run.ID})
		if job.State != acidic.JobAvailable {
			t.Fatalf("manual mode: job %s", job.State)
		}
		manual.RequireNotEnqueued(acidictest.JobFilter{Kind: "child"})
		if got := manual.Drain("default", queue.DrainOptions{}); got.Success != 1 {
			t.Fatalf("drain default: %+v", got)
		}
		if children := manual.AllEnqueued(acidictest.JobFilter{Kind: "child", Queue: "other"}); len(children) != 2 {
			t.Fatalf("%d child jobs on queue other, want 2", len(children))
		}

		inline := acidictest.New(t, acidictest.Options{Driver: testdb.Driver(t, testdb.Dialect(drv), testdb.Options{}), Mode: acidictest.InlineUntilDone}, fanOut()...)
		_ = inline.Workers.Handle("notify", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		res, err = inline.Enqueue(ctx, "parent", args{N: 2}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Run.State != acidic.RunSucceeded {
			t.Fatalf("inline mode: run %s", res.Run.State)
		}
	})
}

func TestPerformJobAndFilters(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		h := acidictest.New(t, acidictest.Options{Driver: drv})
		_ = h.Workers.Handle("ok", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		_ = h.Workers.Handle("no", func(ctx context.Context, job *acidic.Job) error { return queue.Cancel(nil) }, queue.KindOptions{})
		ctx := context.Background()
		later := time.Now().Add(time.Hour)
		if _, err := h.EnqueueJob(ctx, "ok", map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}}, queue.EnqueueOptions{ScheduledAt: later}); err != nil {
			t.Fatal(err)
		}
		outcome, job, err := h.PerformJob(ctx, "no", nil, queue.EnqueueOptions{ScheduleIn: time.Hour})
		if err != nil || outcome != queue.OutcomeCancelled || job.State != acidic.JobCancelled {
			t.Fatalf("perform scheduled job: %s %v %v", outcome, job, err)
		}
		match := func(f acidictest.JobFilter) int { return len(h.AllEnqueued(f)) }
		cases := []struct {
			f    acidictest.JobFilter
			want int
		}{
			{acidictest.JobFilter{Kind: "ok"}, 1},
			{acidictest.JobFilter{Args: map[string]any{"b": map[string]any{"c": 2}}}, 1},
			{acidictest.JobFilter{Args: map[string]any{"b": map[string]any{"c": 3}}}, 0},
			{acidictest.JobFilter{Args: map[string]any{"z": 1}}, 0},
			{acidictest.JobFilter{ScheduledAfter: later.Add(-time.Minute), ScheduledBefore: later.Add(time.Minute)}, 1},
			{acidictest.JobFilter{ScheduledBefore: later.Add(-time.Minute)}, 0},
			{acidictest.JobFilter{Queue: "elsewhere"}, 0},
			{acidictest.JobFilter{Kind: "no", States: []acidic.JobState{acidic.JobCancelled}}, 1},
		}
		for i, tc := range cases {
			if got := match(tc.f); got != tc.want {
				t.Errorf("case %d %+v: %d jobs, want %d", i, tc.f, got, tc.want)
			}
		}
	})
}

// DrainAll's MaxJobs caps the whole call, across queues and rounds: a job
// that always snoozes stops it there instead of looping.
func TestDrainAllStopsAtMaxJobs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("again", func(ctx context.Context, job *acidic.Job) error { return queue.Snooze(0) }, queue.KindOptions{})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws})
		ctx := context.Background()
		for _, q := range []string{"a", "b"} {
			if _, err := h.EnqueueJob(ctx, "again", nil, queue.EnqueueOptions{Queue: q}); err != nil {
				t.Fatal(err)
			}
		}
		if res := h.DrainAll(queue.DrainOptions{WithScheduled: true, MaxJobs: 5}); res.Snoozed != 5 || res.Total() != 5 {
			t.Fatalf("DrainAll(MaxJobs 5) = %+v, want 5 snoozes", res)
		}
	})
}

// In Inline mode EnqueueJob still says whether the job was a duplicate.
func TestInlineEnqueueJobReportsDuplicates(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("once", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Mode: acidictest.Inline, Workers: ws})
		ctx := context.Background()
		opts := queue.EnqueueOptions{Unique: &queue.UniqueOptions{States: queue.AllStates()}}
		first, err := h.EnqueueJob(ctx, "once", args{N: 1}, opts)
		if err != nil || first.Duplicate || first.State != acidic.JobCompleted {
			t.Fatalf("first enqueue: %+v, %v; want a completed new job", first, err)
		}
		again, err := h.EnqueueJob(ctx, "once", args{N: 1}, opts)
		if err != nil || !again.Duplicate || again.ID != first.ID {
			t.Fatalf("second enqueue: %+v, %v; want the first job, marked duplicate", again, err)
		}
	})
}

// fatalTB records a Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalled struct{}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, a ...any) {
	f.msg = fmt.Sprintf(format, a...)
	panic(fatalled{})
}

// fails runs fn and returns the message it failed the test with, or "".
func fails(tb *fatalTB, fn func()) (msg string) {
	tb.msg = ""
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatalled); !ok {
				panic(p)
			}
			msg = tb.msg
		}
	}()
	fn()
	return ""
}

func TestRequireEnqueuedAndNotEnqueuedFail(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		tb := &fatalTB{TB: t}
		h := acidictest.New(tb, acidictest.Options{Driver: drv})
		ctx := context.Background()
		var ids []int64
		for n := range 2 {
			j, err := h.EnqueueJob(ctx, "mail", args{N: n}, queue.EnqueueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, j.ID)
		}
		var got *acidic.Job
		if msg := fails(tb, func() { got = h.RequireEnqueued(acidictest.JobFilter{Kind: "mail"}) }); msg != "" || got.ID != ids[0] {
			t.Errorf("RequireEnqueued of two jobs: failed %q, returned %v; want the first, %d", msg, got, ids[0])
		}
		if msg := fails(tb, func() { h.RequireEnqueued(acidictest.JobFilter{Kind: "sms"}) }); !strings.Contains(msg, "no job enqueued") {
			t.Errorf("RequireEnqueued with no match failed with %q", msg)
		}
		if msg := fails(tb, func() { h.RequireNotEnqueued(acidictest.JobFilter{Kind: "mail"}) }); !strings.Contains(msg, "2 job(s) enqueued") {
			t.Errorf("RequireNotEnqueued with two matches failed with %q", msg)
		}
		if msg := fails(tb, func() { h.RequireNotEnqueued(acidictest.JobFilter{Kind: "sms"}) }); msg != "" {
			t.Errorf("RequireNotEnqueued with no match failed: %q", msg)
		}
	})
}
