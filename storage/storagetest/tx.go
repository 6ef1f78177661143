package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func testInTxErrorRollsBack(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		iso  storage.Isolation
		err  error // returned by fn
		is   error // what errors.Is must find
	}{
		{"read committed", storage.ReadCommitted, errBoom, errBoom},
		{"serializable", storage.Serializable, errBoom, errBoom},
		{"serializable wrapped", storage.Serializable, errors.Join(errors.New("context"), errBoom), errBoom},
		{"serializable not found", storage.Serializable, acidic.ErrNotFound, acidic.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := newDriver(t)
			runs := 0
			var inserted int64
			err := drv.InTx(ctx, tc.iso, func(ctx context.Context, tx storage.Tx) error {
				runs++
				jobs := insertJobs(ctx, t, tx, job("q"))
				inserted = jobs[0].ID
				// The row is visible inside the transaction.
				if _, err := tx.JobGet(ctx, storage.JobGetParams{ID: inserted}); err != nil {
					t.Errorf("JobGet inside the transaction: %v", err)
				}
				return tc.err
			})
			if !errors.Is(err, tc.is) {
				t.Fatalf("InTx error = %v, want one matching %v", err, tc.is)
			}
			if errors.Is(err, acidic.ErrSerialization) || errors.Is(err, acidic.ErrRetriesExhausted) {
				t.Errorf("InTx error %v claims a serialization failure", err)
			}
			if runs != 1 {
				t.Errorf("fn ran %d times, want 1 (no retry for an ordinary error)", runs)
			}
			if got := drv.Stats().TxRetries; got != 0 {
				t.Errorf("Stats().TxRetries = %d, want 0", got)
			}
			if _, err := drv.JobGet(ctx, storage.JobGetParams{ID: inserted}); !errors.Is(err, acidic.ErrNotFound) {
				t.Errorf("JobGet(%d) after rollback: err = %v, want ErrNotFound", inserted, err)
			}
			if jobs := listJobs(ctx, t, drv, acidic.JobFilter{}); len(jobs) != 0 {
				t.Errorf("JobList after rollback returned %d jobs, want 0", len(jobs))
			}
		})
	}
}

func testListenerInsert(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	l := newListener(ctx, t, drv, storage.TopicInsert)

	// A job for later wakes nobody.
	future := job("q1")
	future.ScheduledAt = time.Now().Add(time.Hour)
	if j := insertJobs(ctx, t, drv, future)[0]; j.State != acidic.JobScheduled {
		t.Fatalf("future job state = %s, want scheduled", j.State)
	}
	// Nor does a pending one.
	pending := job("q1")
	pending.State = acidic.JobPending
	insertJobs(ctx, t, drv, pending)
	waitNone(ctx, t, l, 300*time.Millisecond)

	// An available one does, once per queue.
	insertJobs(ctx, t, drv, job("q1"))
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicInsert, Payload: queueHint(ctx, t, drv, "q1")}) {
		t.Errorf("notification = %+v, want {insert <hint of q1>}", n)
	}
	insertJobs(ctx, t, drv, job("q2"), job("q2"), job("q2"))
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicInsert, Payload: queueHint(ctx, t, drv, "q2")}) {
		t.Errorf("notification = %+v, want {insert <hint of q2>}", n)
	}
	waitNone(ctx, t, l, 100*time.Millisecond)
}

func testNotifyTopicsAndStores(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	other := newDriver(t)
	l := newListener(ctx, t, drv, storage.TopicControl)

	// Another store's notifications and other topics are not delivered.
	if err := other.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "other store"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if err := drv.Notify(ctx, storage.NotifyParams{Topic: storage.TopicInsert, Payload: "other topic"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if err := drv.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "cancel:42"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if n := waitOne(ctx, t, l); n != (storage.Notification{Topic: storage.TopicControl, Payload: "cancel:42"}) {
		t.Errorf("notification = %+v, want {control cancel:42}", n)
	}
}
