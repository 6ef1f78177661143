package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/storeurl"
)

// setup returns a harness in manual mode whose refund worker works on the
// test's own orders table.
func setup(t *testing.T) (*acidictest.Harness, *orders) {
	t.Helper()
	pg := acidictest.NewDriver(t)
	h := acidictest.New(t, acidictest.Options{Driver: pg})
	shop, err := newOrders(context.Background(), pg)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.HandleArgs(h.Workers, RefundKind, shop.refund, refundOptions()); err != nil {
		t.Fatal(err)
	}
	return h, shop
}

func TestOnlyOneRefundIsEverCreatedForAnOrder(t *testing.T) {
	t.Parallel()
	h, _ := setup(t)
	ctx := context.Background()
	for _, reason := range []string{"It was awful", "I said it was awful"} {
		if _, err := h.EnqueueJob(ctx, RefundKind, RefundArgs{OrderID: 1, Reason: reason}, queue.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if jobs := h.AllEnqueued(acidictest.JobFilter{Kind: RefundKind}); len(jobs) != 1 {
		t.Fatalf("%d refund jobs for order 1, want 1", len(jobs))
	}
}

func TestFailedRefundIsDiscardedAndNeverEnqueuedAgain(t *testing.T) {
	t.Parallel()
	h, shop := setup(t)
	ctx := context.Background()
	if err := shop.add(ctx, 7, 99); err != nil {
		t.Fatal(err)
	}
	if _, err := h.EnqueueJob(ctx, RefundKind, RefundArgs{OrderID: 7, Reason: "Doesn't matter"}, queue.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	res := h.Drain(RefundQueue, queue.DrainOptions{})
	if res.Discarded != 1 || res.Success != 0 {
		t.Fatalf("drain %+v, want discard 1, success 0", res)
	}
	again, err := h.EnqueueJob(ctx, RefundKind, RefundArgs{OrderID: 7, Reason: "Still doesn't matter"}, queue.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.State != acidic.JobDiscarded {
		t.Fatalf("second refund: %+v, want the discarded job back as a duplicate", again)
	}
	h.RequireNotEnqueued(acidictest.JobFilter{Kind: RefundKind})
}

func TestRetryingADiscardedRefundGivesItOneMoreAttempt(t *testing.T) {
	t.Parallel()
	h, shop := setup(t)
	ctx := context.Background()
	if err := shop.add(ctx, 8, 99); err != nil {
		t.Fatal(err)
	}
	outcome, job, err := h.PerformJob(ctx, RefundKind, RefundArgs{OrderID: 8, Reason: "shutdown"}, queue.EnqueueOptions{})
	if err != nil || outcome != queue.OutcomeDiscarded {
		t.Fatalf("perform: %s %v", outcome, err)
	}
	// The provider is fixed; an operator retries every discarded refund.
	if _, err := shop.db.Exec(ctx, "UPDATE refund_orders SET total = 100 WHERE id = 8"); err != nil {
		t.Fatal(err)
	}
	retried, err := h.Queue().RetryMany(ctx, acidic.JobFilter{Kind: RefundKind, States: []acidic.JobState{acidic.JobDiscarded}})
	if err != nil || len(retried) != 1 {
		t.Fatalf("retry: %v %v", retried, err)
	}
	if r := retried[0]; r.ID != job.ID || r.State != acidic.JobAvailable || r.Attempt != 1 || r.MaxAttempts != 2 {
		t.Fatalf("retried job: state %s attempt %d of %d; want available, attempt 1 of 2", r.State, r.Attempt, r.MaxAttempts)
	}
	if res := h.Drain(RefundQueue, queue.DrainOptions{}); res.Success != 1 {
		t.Fatalf("drain after retry %+v", res)
	}
}

func TestDebouncePushesTheRefundLater(t *testing.T) {
	t.Parallel()
	h, _ := setup(t)
	ctx := context.Background()
	first, err := h.EnqueueJob(ctx, RefundKind, RefundArgs{OrderID: 3}, debounced(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	second, err := h.EnqueueJob(ctx, RefundKind, RefundArgs{OrderID: 3, Reason: "with a reason now"}, debounced(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || !second.ScheduledAt.After(first.ScheduledAt) {
		t.Fatalf("debounce: first %d at %s, second %d at %s", first.ID, first.ScheduledAt, second.ID, second.ScheduledAt)
	}
	job := h.RequireEnqueued(acidictest.JobFilter{
		Kind:           RefundKind,
		Args:           map[string]any{"reason": "with a reason now"},
		ScheduledAfter: first.ScheduledAt.Add(time.Millisecond),
	})
	if job.State != acidic.JobScheduled {
		t.Fatalf("state %s", job.State)
	}
	if res := h.Drain(RefundQueue, queue.DrainOptions{}); res.Total() != 0 {
		t.Fatalf("a refund scheduled 10 minutes out ran: %+v", res)
	}
}

// TestProgramOnBothDrivers runs the program's run on a SQLite file and on a
// PostgreSQL schema: the same code, the store chosen by its URL.
func TestProgramOnBothDrivers(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		src := storeurl.Source{URL: "sqlite:" + filepath.Join(t.TempDir(), "acidic.db"), From: "test"}
		if err := run(src, "", 1, 2500, 0); err != nil {
			t.Fatal(err)
		}
		if err := run(src, "", 2, 99, 0); err != nil { // the provider fails: discarded
			t.Fatal(err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		schema := testdb.SchemaName(t)
		t.Cleanup(func() { testdb.DropSchema(t, schema) })
		if err := run(storeurl.Source{URL: testdb.URL(), From: "test"}, schema, 1, 2500, 0); err != nil {
			t.Fatal(err)
		}
	})
}
