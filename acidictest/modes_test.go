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
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// jobRows counts the rows of the harness's jobs table, whatever their state.
func jobRows(t *testing.T, h *acidictest.Harness) int {
	t.Helper()
	jobs, err := h.Driver.JobList(context.Background(), acidic.JobFilter{Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

// PerformWorker runs the worker on a job built in memory as the enqueue
// would build it, writes nothing (so a unique worker runs twice), and
// returns the worker's own error.
func TestPerformWorkerRunsTheWorkerAndWritesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		errCard := errors.New("card declined")
		var seen []*acidic.Job
		ws := queue.NewWorkers()
		_ = queue.HandleArgs(ws, "charge", func(ctx context.Context, job *acidic.Job, a args) error {
			seen = append(seen, job)
			if a.N < 0 {
				return fmt.Errorf("charge %d: %w", a.N, errCard)
			}
			return nil
		}, queue.KindOptions{Queue: "payments", MaxAttempts: 3, Unique: &queue.UniqueOptions{States: queue.AllStates()}})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws}, fanOut()...)
		ctx := context.Background()

		for range 2 {
			outcome, err := h.PerformWorker(ctx, "charge", args{N: 5}, queue.EnqueueOptions{Priority: queue.PriorityOf(2)})
			if err != nil || outcome != queue.OutcomeCompleted {
				t.Fatalf("perform unique worker: %s, %v; want completed, nil", outcome, err)
			}
		}
		if len(seen) != 2 {
			t.Fatalf("worker ran %d times, want 2", len(seen))
		}
		j := seen[0]
		if j.ID != 0 || j.Kind != "charge" || string(j.Args) != `{"n":5}` || j.Attempt != 1 || j.MaxAttempts != 3 ||
			j.Queue != "payments" || j.Priority != 2 || j.State != acidic.JobRunning {
			t.Errorf("the worker saw %+v; want id 0, args {\"n\":5}, attempt 1 of 3 on payments, priority 2, running", j)
		}

		outcome, err := h.PerformWorker(ctx, "charge", args{N: -1}, queue.EnqueueOptions{})
		if !errors.Is(err, errCard) || outcome != queue.OutcomeRetry {
			t.Errorf("failing worker: %s, %v; want retry and the worker's own error", outcome, err)
		}
		outcome, err = h.PerformWorker(ctx, "charge", args{N: -1}, queue.EnqueueOptions{MaxAttempts: 1})
		if !errors.Is(err, errCard) || outcome != queue.OutcomeDiscarded {
			t.Errorf("failing worker on its last attempt: %s, %v; want discarded", outcome, err)
		}

		bad := []struct {
			kind string
			opts queue.EnqueueOptions
			want error
		}{
			{"charge", queue.EnqueueOptions{MaxAttempts: -1}, queue.ErrInvalid},
			{"", queue.EnqueueOptions{}, queue.ErrInvalid},
			{"parent", queue.EnqueueOptions{}, queue.ErrInvalid},
			{workflow.FinishKind, queue.EnqueueOptions{}, queue.ErrInvalid},
			{"nobody", queue.EnqueueOptions{}, queue.ErrUnknownKind},
		}
		for _, b := range bad {
			if outcome, err := h.PerformWorker(ctx, b.kind, args{N: 1}, b.opts); !errors.Is(err, b.want) || outcome != "" {
				t.Errorf("PerformWorker(%q, %+v) = %q, %v; want no outcome and %v", b.kind, b.opts, outcome, err, b.want)
			}
		}
		if len(seen) != 4 {
			t.Errorf("worker ran %d times, want 4 (bad input runs nothing)", len(seen))
		}
		if n := jobRows(t, h); n != 0 {
			t.Fatalf("%d job rows after PerformWorker, want 0", n)
		}
	})
}

// PerformWorker applies the kind's Timeout and turns a panic into an error,
// as the queue does.
func TestPerformWorkerAppliesTimeoutAndRecoversPanics(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		_ = ws.Handle("slow", func(ctx context.Context, job *acidic.Job) error {
			<-ctx.Done() // ends only by the kind's timeout
			return ctx.Err()
		}, queue.KindOptions{Timeout: 10 * time.Millisecond})
		_ = ws.Handle("boom", func(ctx context.Context, job *acidic.Job) error { panic("boom") }, queue.KindOptions{})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws})
		ctx := context.Background()
		if outcome, err := h.PerformWorker(ctx, "slow", nil, queue.EnqueueOptions{}); !errors.Is(err, context.DeadlineExceeded) || outcome != queue.OutcomeRetry {
			t.Errorf("slow worker: %s, %v; want retry after the deadline", outcome, err)
		}
		if outcome, err := h.PerformWorker(ctx, "boom", nil, queue.EnqueueOptions{}); err == nil || !strings.Contains(err.Error(), "panicked: boom") || outcome != queue.OutcomeRetry {
			t.Errorf("panicking worker: %s, %v; want retry and the panic as an error", outcome, err)
		}
	})
}

// PerformWorker's outcome is the one the queue records for the same error.
func TestPerformWorkerOutcomesMatchTheQueue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		cases := []error{nil, errors.New("plain"), queue.Snooze(time.Hour), queue.Cancel(nil), queue.Cancel(errors.New("why")),
			queue.Discard(nil), fmt.Errorf("wrapped: %w", queue.Snooze(0))}
		ws := queue.NewWorkers()
		_ = queue.HandleArgs(ws, "case", func(ctx context.Context, job *acidic.Job, a args) error { return cases[a.N] }, queue.KindOptions{})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws})
		ctx := context.Background()
		for i, want := range cases {
			for _, max := range []int{1, 2} {
				opts := queue.EnqueueOptions{MaxAttempts: max}
				queued, _, err := h.PerformJob(ctx, "case", args{N: i}, opts)
				if err != nil {
					t.Fatal(err)
				}
				got, err := h.PerformWorker(ctx, "case", args{N: i}, opts)
				if !errors.Is(err, want) || got != queued {
					t.Errorf("error %v, max attempts %d: PerformWorker = %s, %v; the queue recorded %s", want, max, got, err, queued)
				}
			}
		}
	})
}

// counter registers kind on ws with a worker that counts its attempts and
// returns what fn says for the n-th.
func counter(ws *queue.Workers, kind string, fn func(n int) error) *int {
	n := new(int)
	_ = ws.Handle(kind, func(ctx context.Context, job *acidic.Job) error {
		*n++
		return fn(*n)
	}, queue.KindOptions{})
	return n
}

// Inline attempts each job the enqueue made runnable once, leaving its
// retry or snooze stored, and leaves jobs that were waiting before alone;
// InlineUntilDone runs them until they rest.
func TestInlineAttemptsEachJobOnceAndInlineUntilDoneLoops(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		ws := queue.NewWorkers()
		snoozes := counter(ws, "snoozy", func(n int) error {
			if n < 4 {
				return queue.Snooze(0)
			}
			return nil
		})
		fails := counter(ws, "flaky", func(int) error { return errors.New("down") })
		h := acidictest.New(t, acidictest.Options{Driver: drv, Mode: acidictest.Inline, Workers: ws})

		waiting := counter(ws, "waiting", func(int) error { return nil })
		h.WithMode(acidictest.Manual, func() {
			if _, err := h.EnqueueJob(ctx, "waiting", nil, queue.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
		})
		job, err := h.EnqueueJob(ctx, "snoozy", nil, queue.EnqueueOptions{})
		if err != nil || *snoozes != 1 || job.State != acidic.JobScheduled {
			t.Fatalf("inline snoozing job: ran %d times, now %+v, %v; want once, left scheduled", *snoozes, job, err)
		}
		job, err = h.EnqueueJob(ctx, "flaky", nil, queue.EnqueueOptions{})
		if err != nil || *fails != 1 || job.State != acidic.JobRetryable || job.Attempt != 1 {
			t.Fatalf("inline failing job: ran %d times, now %+v, %v; want once, left retryable", *fails, job, err)
		}
		if *waiting != 0 {
			t.Fatalf("a job waiting before the enqueue ran %d times in Inline mode", *waiting)
		}

		h.WithMode(acidictest.InlineUntilDone, func() {
			if _, err := h.EnqueueJob(ctx, "flaky", nil, queue.EnqueueOptions{MaxAttempts: 3, Queue: "other"}); err != nil {
				t.Fatal(err)
			}
		})
		// The new job's three attempts, and the rest of the first one's 20; the
		// snoozing job completes, and the waiting job runs too.
		if *fails != 1+3+19 || *snoozes != 4 || *waiting != 1 {
			t.Fatalf("InlineUntilDone: flaky ran %d, snoozy %d, waiting %d times; want 23, 4, 1", *fails, *snoozes, *waiting)
		}
		h.RequireNotEnqueued(acidictest.JobFilter{})
	})
}

// An inline workflow runs its children and its next job once each; its
// failed step's retry is left stored, and InlineUntilDone runs it.
func TestInlineWorkflowLeavesItsRetryStored(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		h := acidictest.New(t, acidictest.Options{Driver: drv, Mode: acidictest.Inline}, fanOut()...)
		_ = h.Workers.Handle("notify", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		res, err := h.Enqueue(ctx, "parent", args{N: 2}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Run.State != acidic.RunPending || len(res.Run.Steps) != 2 || res.Run.Steps[1].Executions != 1 {
			t.Fatalf("inline: run %s, steps %+v; want pending after one execution of the failing step", res.Run.State, res.Run.Steps)
		}
		retry := h.RequireEnqueued(acidictest.JobFilter{Kind: "parent", RunID: res.Run.ID})
		if retry.State != acidic.JobRetryable {
			t.Fatalf("the run's job is %s, want retryable", retry.State)
		}
		if done := h.AllEnqueued(acidictest.JobFilter{Kind: "child", States: []acidic.JobState{acidic.JobCompleted}}); len(done) != 2 {
			t.Fatalf("%d children completed, want 2", len(done))
		}

		h.WithMode(acidictest.InlineUntilDone, func() {
			res, err = h.Enqueue(ctx, "parent", args{N: 3}, workflow.EnqueueOptions{})
		})
		if err != nil || res.Run.State != acidic.RunSucceeded {
			t.Fatalf("InlineUntilDone: run %v, %v; want succeeded", res.Run.State, err)
		}
	})
}

// WithMode switches the mode for its function only, and puts the previous
// one back even when the function panics.
func TestWithModeRestoresTheMode(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		ws := queue.NewWorkers()
		_ = ws.Handle("ok", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws})
		var inline *acidic.Job
		h.WithMode(acidictest.Inline, func() {
			var err error
			if inline, err = h.EnqueueJob(ctx, "ok", nil, queue.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
			if h.Mode() != acidictest.Inline {
				t.Errorf("mode %s inside WithMode(Inline)", h.Mode())
			}
		})
		manual, err := h.EnqueueJob(ctx, "ok", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if inline.State != acidic.JobCompleted || manual.State != acidic.JobAvailable || h.Mode() != acidictest.Manual {
			t.Fatalf("inside WithMode: %s; after: %s, mode %s; want completed, then available in manual mode", inline.State, manual.State, h.Mode())
		}
		func() {
			defer func() { _ = recover() }()
			h.WithMode(acidictest.InlineUntilDone, func() { panic("test fails") })
		}()
		if h.Mode() != acidictest.Manual {
			t.Fatalf("mode %s after a panic in WithMode, want manual", h.Mode())
		}
	})
}

// The Tx variants enqueue in the test's transaction and run nothing, even
// in Inline mode: the work exists once the transaction commits.
func TestEnqueueTxStoresOnCommitOnly(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		h := acidictest.New(t, acidictest.Options{Mode: acidictest.Inline, Driver: drv}, fanOut()...)
		ran := counter(h.Workers, "mail", func(int) error { return nil })
		enqueue := func() storage.Tx {
			tx := testdb.Begin(t, drv)
			if _, err := h.EnqueueJobTx(ctx, tx, "mail", args{N: 1}, queue.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.EnqueueTx(ctx, tx, "parent", args{N: 1}, workflow.EnqueueOptions{}); err != nil {
				t.Fatal(err)
			}
			h.RequireNotEnqueued(acidictest.JobFilter{}) // not committed yet
			return tx
		}
		if err := enqueue().Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		h.RequireNotEnqueued(acidictest.JobFilter{})
		if err := enqueue().Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"mail", "parent"} {
			if j := h.RequireEnqueued(acidictest.JobFilter{Kind: kind}); j.State != acidic.JobAvailable {
				t.Errorf("%s job %s after commit, want available", kind, j.State)
			}
		}
		if *ran != 0 {
			t.Fatalf("the mail job ran %d times before a drain", *ran)
		}
	})
}

// The generic RequireEnqueued decodes the args of the job it finds, and
// fails the test when they do not decode.
func TestRequireEnqueuedDecodesArgs(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		tb := &fatalTB{TB: t}
		h := acidictest.New(tb, acidictest.Options{Driver: drv})
		ctx := context.Background()
		if _, err := h.EnqueueJob(ctx, "mail", map[string]any{"n": 7, "to": "ada"}, queue.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		var got args
		if msg := fails(tb, func() { got = acidictest.RequireEnqueued[args](h, acidictest.JobFilter{Kind: "mail"}) }); msg != "" || got.N != 7 {
			t.Errorf("RequireEnqueued[args]: failed %q, returned %+v; want n 7", msg, got)
		}
		if msg := fails(tb, func() { acidictest.RequireEnqueued[[]int](h, acidictest.JobFilter{Kind: "mail"}) }); !strings.Contains(msg, "into []int") {
			t.Errorf("RequireEnqueued[[]int] of an object failed with %q", msg)
		}
		if msg := fails(tb, func() { acidictest.RequireEnqueued[args](h, acidictest.JobFilter{Kind: "sms"}) }); !strings.Contains(msg, "no job enqueued") {
			t.Errorf("RequireEnqueued[args] with no match failed with %q", msg)
		}
	})
}
