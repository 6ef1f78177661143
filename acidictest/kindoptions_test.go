package acidictest_test

import (
	"context"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// The harness's helpers honour a kind's options (queue.KindOptions) as the
// queue does: EnqueueJob (in every mode), EnqueueJobTx, PerformJob and
// PerformWorker; and an enqueue's PriorityOf(0) wins over the kind's.
func TestHelpersHonourKindOptions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		err := ws.Handle("charge", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{
			Queue: "payments", Priority: queue.PriorityOf(2), MaxAttempts: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		h := acidictest.New(t, acidictest.Options{Driver: drv, Workers: ws})
		ctx := context.Background()
		check := func(how string, j *acidic.Job, priority int) {
			t.Helper()
			if j.Queue != "payments" || j.Priority != priority || j.MaxAttempts != 4 {
				t.Errorf("%s: queue %q priority %d max attempts %d; want payments, %d, 4", how, j.Queue, j.Priority, j.MaxAttempts, priority)
			}
		}
		for _, mode := range []acidictest.Mode{acidictest.Manual, acidictest.Inline, acidictest.InlineUntilDone} {
			h.WithMode(mode, func() {
				j, err := h.EnqueueJob(ctx, "charge", nil, queue.EnqueueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				check("EnqueueJob in "+mode.String(), j, 2)
			})
		}
		j, err := h.EnqueueJob(ctx, "charge", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(0)})
		if err != nil {
			t.Fatal(err)
		}
		check("EnqueueJob at priority 0", j, 0)
		err = h.Driver.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			j, err := h.EnqueueJobTx(ctx, tx, "charge", nil, queue.EnqueueOptions{})
			if err == nil {
				check("EnqueueJobTx", j, 2)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_, j, err = h.PerformJob(ctx, "charge", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		check("PerformJob", j, 2)
		var seen *acidic.Job
		_ = ws.Handle("seen", func(_ context.Context, job *acidic.Job) error { seen = job; return nil }, queue.KindOptions{
			Queue: "payments", Priority: queue.PriorityOf(2), MaxAttempts: 4,
		})
		if _, err := h.PerformWorker(ctx, "seen", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(0)}); err != nil || seen == nil {
			t.Fatalf("PerformWorker: %v", err)
		}
		check("PerformWorker at priority 0", seen, 0)
	})
}
