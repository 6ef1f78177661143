package storagetest

import (
	"reflect"
	"testing"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// testRunEnd: a run ends with its carrying job only while it is live, only
// for a job of its workflow kind, and only once no other job of that kind
// is unfinished; the end clears the lease.
func testRunEnd(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")
	carrier := func() *acidic.Job {
		j := job("q")
		j.RunID, j.Kind = r.ID, r.Workflow
		return insertJobs(ctx, t, drv, j)[0]
	}
	a, b := carrier(), carrier()
	// a runs and holds the lease, then is cancelled.
	if _, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: a.ID, WorkerID: "w"}); err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: attempt1(a.ID)}); !ok {
		t.Fatal("lease refused")
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: a.ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	end := func(job int64, kind string) (*acidic.Run, bool) {
		t.Helper()
		got, ended, err := drv.RunEnd(ctx, storage.RunEndParams{ID: r.ID, Job: job, Kind: kind, State: acidic.RunCancelled, Error: "job cancelled"})
		if err != nil {
			t.Fatalf("RunEnd(job %d, %s): %v", job, kind, err)
		}
		return got, ended
	}

	// A job of another kind on the run (a side job) carries nothing.
	side := job("q")
	side.RunID, side.Kind = r.ID, "side_kind"
	insertJobs(ctx, t, drv, side)

	if got, ended := end(a.ID, r.Workflow); ended || got.State.Final() {
		t.Errorf("RunEnd while job %d of the kind is unfinished = %+v, %v; want the run carried on", b.ID, got, ended)
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: b.ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	before := getRun(ctx, t, drv, r.ID)
	if got, ended := end(b.ID, side.Kind); ended || !reflect.DeepEqual(got, before) {
		t.Errorf("RunEnd for a job of another kind = %+v, %v; want the run unchanged", got, ended)
	}
	got, ended := end(b.ID, r.Workflow)
	if !ended || got.State != acidic.RunCancelled || got.Error != "job cancelled" || got.FinishedAt == nil || got.LockedBy != "" || got.LockedAt != nil {
		t.Fatalf("RunEnd once no carrier is left = %+v, %v; want cancelled, finished, unleased", got, ended)
	}
	if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("RunGet = %+v, want what RunEnd returned %+v", stored, got)
	}
	if again, ended := end(b.ID, r.Workflow); ended || !reflect.DeepEqual(again, got) {
		t.Errorf("RunEnd of a finished run = %+v, %v; want it unchanged", again, ended)
	}

	// Resting runs (awaiting, halted) are not live: a job does not end them.
	for _, state := range []acidic.RunState{acidic.RunAwaiting, acidic.RunHalted} {
		rr := insertRun(ctx, t, drv, "rest-"+string(state))
		if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: rr.ID, From: []acidic.RunState{acidic.RunPending}, To: state, Error: ""}); err != nil || !changed {
			t.Fatalf("RunSetState(%s) = %v, %v", state, changed, err)
		}
		got, ended, err := drv.RunEnd(ctx, storage.RunEndParams{ID: rr.ID, Job: 1 << 40, Kind: rr.Workflow, State: acidic.RunFailed, Error: "x"})
		if err != nil || ended || got.State != state {
			t.Errorf("RunEnd of a %s run = %+v, %v, %v; want it unchanged", state, got, ended, err)
		}
	}
}

// testRunSettle: a finished run is settled once per finish; a retry clears
// the mark, so the next finish is settled again.
func testRunSettle(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")
	if got, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID}); err != nil || ok || got != nil {
		t.Errorf("RunSettle of a pending run = %+v, %v, %v; want nil, false", got, ok, err)
	}
	if got := getRun(ctx, t, drv, r.ID); got.SettledAt != nil {
		t.Errorf("a pending run was settled: %+v", got)
	}
	for round := 1; round <= 2; round++ {
		if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunFailed, Error: "boom"}); err != nil || !changed {
			t.Fatalf("round %d: RunSetState(failed) = %v, %v", round, changed, err)
		}
		got, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID})
		if err != nil || !ok || got.SettledAt == nil || got.State != acidic.RunFailed {
			t.Fatalf("round %d: RunSettle = %+v, %v, %v; want settled", round, got, ok, err)
		}
		again, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID})
		if err != nil || ok || again != nil {
			t.Errorf("round %d: second RunSettle = %+v, %v, %v; want nil, false", round, again, ok, err)
		}
		if stored := getRun(ctx, t, drv, r.ID); stored.SettledAt == nil || !stored.SettledAt.Equal(*got.SettledAt) {
			t.Errorf("round %d: the second RunSettle moved the mark: %v, was %v", round, stored.SettledAt, got.SettledAt)
		}
		retried, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunFailed}, To: acidic.RunPending, Error: ""})
		if err != nil || !changed || retried.SettledAt != nil {
			t.Fatalf("round %d: retry = %+v, %v, %v; want pending, unsettled", round, retried, changed, err)
		}
	}
}
