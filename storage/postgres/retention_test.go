package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
)

// TestRunDeleteSeesWhatTheRunsLastWriterCommitted: a RunDelete that waits
// for a transaction holding the run (here a retry: the run made pending
// again, with a new job) judges the run as that transaction left it. A
// delete that judged the run from a snapshot taken before the wait would
// delete a run that is pending again, and orphan its new job.
func TestRunDeleteSeesWhatTheRunsLastWriterCommitted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	drv := testdb.New(t, testdb.Options{})
	r := insertRun(ctx, t, drv, "retried")
	if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunCancelled, Error: "by operator"}); err != nil || !changed {
		t.Fatalf("RunSetState = %v, %v", changed, err)
	}
	if _, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID}); err != nil || !ok {
		t.Fatalf("RunSettle = %v, %v", ok, err)
	}

	// The retry, uncommitted: the run pending again, with a new job.
	txA, err := drv.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = txA.Rollback(context.Background()) }()
	wtx := drv.WrapTx(txA)
	if _, changed, err := wtx.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunCancelled}, To: acidic.RunPending, Error: ""}); err != nil || !changed {
		t.Fatalf("retry: RunSetState = %v, %v", changed, err)
	}
	in := job("runs")
	in.Kind, in.RunID = "wf", r.ID
	retryJob := insertJobs(ctx, t, wtx, in)[0]

	type result struct {
		r   *acidic.Run
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: r.ID})
		done <- result{got, err}
	}()
	for i := 0; ; i++ {
		var n int
		err := drv.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
			drv.Schema()).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if i > 2000 {
			t.Fatal("RunDelete never waited for the retry's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if !errors.Is(got.err, acidic.ErrInUse) {
		t.Errorf("RunDelete of a run retried meanwhile = %+v, %v; want ErrInUse", got.r, got.err)
	}
	if now := getRun(ctx, t, drv, r.ID); now.State != acidic.RunPending {
		t.Errorf("the retried run is %s, want pending", now.State)
	}
	if j := getJob(ctx, t, drv, retryJob.ID); j.RunID != r.ID {
		t.Errorf("the retry's job lost its run: run_id %s", j.RunID)
	}
}
