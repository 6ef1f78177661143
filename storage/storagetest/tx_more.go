package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// testInTxCommits: InTx commits at either isolation, and runs fn again
// after a serialization failure, the failed run rolled back.
func testInTxCommits(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	for _, iso := range []storage.Isolation{storage.ReadCommitted, storage.Serializable} {
		if err := drv.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
			insertJobs(ctx, t, tx, job("q"))
			return nil
		}); err != nil {
			t.Fatalf("InTx(%d): %v", iso, err)
		}
	}
	if jobs := listJobs(ctx, t, drv, acidic.JobFilter{}); len(jobs) != 2 {
		t.Fatalf("JobList after two committed transactions returned %d jobs, want 2", len(jobs))
	}

	runs := 0
	retriesBefore := drv.Stats().TxRetries
	err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		runs++
		insertJobs(ctx, t, tx, job("retried"))
		if runs == 1 {
			return fmt.Errorf("conflict: %w", acidic.ErrSerialization)
		}
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("InTx after a serialization failure = %v after %d runs; want success on the second", err, runs)
	}
	if got := drv.Stats().TxRetries - retriesBefore; got != 1 {
		t.Errorf("Stats().TxRetries grew by %d, want 1", got)
	}
	if jobs := listJobs(ctx, t, drv, acidic.JobFilter{Queue: "retried"}); len(jobs) != 1 {
		t.Errorf("%d jobs from the retried transaction, want 1 (the failed run rolled back)", len(jobs))
	}
}

// testInStepTx: InStepTx commits the step's writes with its update and
// StepCommit.Then in one transaction, and rolls all of it back when the
// lease is lost, fn fails or Then fails.
func testInStepTx(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := leasedRun(ctx, t, drv, "k", "a")

	var thenSaw *acidic.Run
	got, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		insertJobs(ctx, t, tx, job("step"))
		return storage.StepCommit{
			Update: stepUpdate(r, "a", "step2"),
			Then: func(ctx context.Context, tx storage.Tx, run *acidic.Run) error {
				thenSaw = run
				insertJobs(ctx, t, tx, job("then"))
				return nil
			},
		}, nil
	})
	if err != nil || got.RecoveryPoint != "step2" {
		t.Fatalf("InStepTx = %+v, %v; want the run at step2", got, err)
	}
	if thenSaw == nil || thenSaw.RecoveryPoint != "step2" {
		t.Errorf("Then saw %+v, want the run as the update left it", thenSaw)
	}
	for _, q := range []string{"step", "then"} {
		if n := len(listJobs(ctx, t, drv, acidic.JobFilter{Queue: q})); n != 1 {
			t.Errorf("%d jobs written by the %s part of a committed step, want 1", n, q)
		}
	}
	if steps := runSteps(ctx, t, drv, r.ID); len(steps) != 1 {
		t.Errorf("step log = %+v, want the step", steps)
	}

	before := getRun(ctx, t, drv, r.ID)
	errThen := errors.New("then failed")
	for _, tc := range []struct {
		name    string
		token   string
		touch   bool
		fnErr   error
		thenErr error
		want    error
	}{
		{"lease lost", "b", true, nil, nil, acidic.ErrLeaseLost},
		{"lease lost, untouched", "b", false, nil, nil, acidic.ErrLeaseLost},
		{"fn fails", "a", true, errBoom, nil, errBoom},
		{"Then fails", "a", true, nil, errThen, errThen},
	} {
		q := "rolled_back_" + tc.name
		thenRan := false
		_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			if tc.touch {
				insertJobs(ctx, t, tx, job(q))
			}
			return storage.StepCommit{
				Update: stepUpdate(before, tc.token, "step3"),
				Then: func(ctx context.Context, tx storage.Tx, _ *acidic.Run) error {
					thenRan = true
					insertJobs(ctx, t, tx, job(q))
					return tc.thenErr
				},
			}, tc.fnErr
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: InStepTx err = %v, want %v", tc.name, err, tc.want)
		}
		if thenRan && tc.thenErr == nil {
			t.Errorf("%s: Then ran although the step failed", tc.name)
		}
		if n := len(listJobs(ctx, t, drv, acidic.JobFilter{Queue: q})); n != 0 {
			t.Errorf("%s: %d jobs written by a failed step, want none", tc.name, n)
		}
		if after := getRun(ctx, t, drv, r.ID); after.RecoveryPoint != before.RecoveryPoint || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("%s: the run moved to %q (updated %v), want it unchanged at %q", tc.name, after.RecoveryPoint, after.UpdatedAt, before.RecoveryPoint)
		}
	}
	if steps := runSteps(ctx, t, drv, r.ID); len(steps) != 1 || steps[0].Executions != 1 {
		t.Errorf("step log after failed steps = %+v, want the one committed step", steps)
	}
}

// testNotifyOnCommitOnly: notifications sent inside a transaction (by a
// write that wakes workers, or by Notify) are delivered on commit, and not
// at all on rollback.
func testNotifyOnCommitOnly(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	l := newListener(ctx, t, drv, storage.TopicInsert, storage.TopicControl)

	err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		insertJobs(ctx, t, tx, job("rolled_back"))
		if err := tx.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "rolled back"}); err != nil {
			t.Errorf("Notify: %v", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	if err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		if err := tx.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: "committed"}); err != nil {
			return err
		}
		insertJobs(ctx, t, tx, job("committed"))
		return nil
	}); err != nil {
		t.Fatalf("InTx: %v", err)
	}
	got := []storage.Notification{waitOne(ctx, t, l), waitOne(ctx, t, l)}
	want := []storage.Notification{
		{Topic: storage.TopicControl, Payload: "committed"},
		{Topic: storage.TopicInsert, Payload: queueHint(ctx, t, drv, "committed")},
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("notifications after commit = %+v, want %+v among them", got, w)
		}
	}
	waitNone(ctx, t, l, 100*time.Millisecond)
}
