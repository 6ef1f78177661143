package storagetest

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
	"github.com/acidic-go/acidic/storage"
)

// The contract of storage.Retention: pruning finished jobs and runs by
// final state, and deleting one run on purpose, never taking what something
// unfinished still needs.
var retentionTests = []conformanceTest{
	{"JobPruneByState", testJobPruneByState},
	{"JobPruneByStateKeepsWhatOthersNeed", testJobPruneByStateKeepsWhatOthersNeed},
	{"RunPrune", testRunPrune},
	{"RunPruneKeepsWhatOthersNeed", testRunPruneKeepsWhatOthersNeed},
	{"RunDelete", testRunDelete},
	{"RunDeleteRefusesWhatIsInUse", testRunDeleteRefusesWhatIsInUse},
	{"RetentionRefusesInvalidParams", testRetentionRefusesInvalidParams},
}

// finishedRun inserts the run in and ends it in state (through RunSetState,
// as an operator's action would), settled when settle is set.
func finishedRun(ctx context.Context, t *testing.T, drv storage.Driver, in storage.RunInsertParams, state acidic.RunState, settle bool) *acidic.Run {
	t.Helper()
	r := insertRunWith(ctx, t, drv, in)
	if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: state, Error: ""}); err != nil || !changed {
		t.Fatalf("RunSetState(%s -> %s) = %v, %v", r.ID, state, changed, err)
	}
	if settle {
		if _, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID}); err != nil || !ok {
			t.Fatalf("RunSettle(%s) = %v, %v", r.ID, ok, err)
		}
	}
	return getRun(ctx, t, drv, r.ID)
}

// runOf returns a RunInsert of workflow wf with a fresh key.
func runOf(wf string) storage.RunInsertParams {
	in := runInsert(wf + "-" + uuid.NewString())
	in.Workflow = wf
	return in
}

// childOf returns a RunInsert of a child of parent.
func childOf(parent uuid.UUID) storage.RunInsertParams {
	in := runOf("child")
	in.ParentRunID, in.ParentStep = parent, "fanout"
	return in
}

// runExists reports whether a run with id is stored.
func runExists(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) bool {
	t.Helper()
	_, err := e.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil && !errors.Is(err, acidic.ErrNotFound) {
		t.Fatalf("RunGet(%s): %v", id, err)
	}
	return err == nil
}

// jobExists reports whether a job with id is stored.
func jobExists(ctx context.Context, t *testing.T, e storage.Executor, id int64) bool {
	t.Helper()
	_, err := e.JobGet(ctx, storage.JobGetParams{ID: id})
	if err != nil && !errors.Is(err, acidic.ErrNotFound) {
		t.Fatalf("JobGet(%d): %v", id, err)
	}
	return err == nil
}

// withStepLog inserts a run with one step log entry, leased with token
// "tok" by a running job of it (see progressedRun).
func withStepLog(ctx context.Context, t *testing.T, drv storage.Driver, key string) *acidic.Run {
	t.Helper()
	r := progressedRun(ctx, t, drv, key, "tok")
	if len(runSteps(ctx, t, drv, r.ID)) != 1 {
		t.Fatalf("set-up: run %s has no step log", key)
	}
	return r
}

func pruneJobs(ctx context.Context, t *testing.T, drv storage.Driver, p storage.JobPruneByStateParams) int {
	t.Helper()
	n, err := drv.JobPruneByState(ctx, p)
	if err != nil {
		t.Fatalf("JobPruneByState(%+v): %v", p, err)
	}
	return n
}

func pruneRuns(ctx context.Context, t *testing.T, drv storage.Driver, p storage.RunPruneParams) int {
	t.Helper()
	n, err := drv.RunPrune(ctx, p)
	if err != nil {
		t.Fatalf("RunPrune(%+v): %v", p, err)
	}
	return n
}

// testJobPruneByState: each final state is pruned by its own retention, a
// state not named is kept, kept queues are never pruned, unfinished jobs
// never are, and Limit caps one call.
func testJobPruneByState(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	// In queues "q" and "audit": completed, cancelled, discarded, available,
	// retryable and running jobs, two of each final state in "q".
	end := func(q string, state acidic.JobState) int64 {
		t.Helper()
		j := insertJobs(ctx, t, drv, job(q))[0]
		if state == acidic.JobAvailable {
			return j.ID
		}
		if state == acidic.JobCancelled {
			if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: j.ID}); err != nil {
				t.Fatalf("JobCancel: %v", err)
			}
			return j.ID
		}
		if _, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: "w"}); err != nil {
			t.Fatalf("JobClaim: %v", err)
		}
		switch state {
		case acidic.JobCompleted:
			if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(j.ID)}}); err != nil || len(done) != 1 {
				t.Fatalf("JobComplete = %v, %v", done, err)
			}
		case acidic.JobDiscarded, acidic.JobRetryable:
			if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(j.ID), State: state, ScheduledAt: time.Now()}); err != nil || !ok {
				t.Fatalf("JobFinish(%s) = %v, %v", state, ok, err)
			}
		}
		return j.ID
	}
	byState := map[acidic.JobState][]int64{}
	var audit, unfinished []int64
	for _, s := range []acidic.JobState{acidic.JobCompleted, acidic.JobCancelled, acidic.JobDiscarded} {
		byState[s] = []int64{end("q", s), end("q", s)}
		audit = append(audit, end("audit", s))
	}
	for _, s := range []acidic.JobState{acidic.JobAvailable, acidic.JobRetryable, acidic.JobRunning} {
		unfinished = append(unfinished, end("q", s))
	}
	left := func() []int64 {
		return ids(listJobs(ctx, t, drv, acidic.JobFilter{}))
	}
	all := left()

	// Everything finished just now: an hour's retention keeps it all.
	hour := map[acidic.JobState]time.Duration{acidic.JobCompleted: time.Hour, acidic.JobCancelled: time.Hour, acidic.JobDiscarded: time.Hour}
	if n := pruneJobs(ctx, t, drv, storage.JobPruneByStateParams{Retention: hour, Limit: 100}); n != 0 {
		t.Errorf("prune with 1h retention deleted %d jobs, want 0", n)
	}
	// Completed jobs at once, cancelled after an hour, discarded not named
	// (kept for ever), the audit queue kept: one completed job per call.
	p := storage.JobPruneByStateParams{
		Retention:  map[acidic.JobState]time.Duration{acidic.JobCompleted: 0, acidic.JobCancelled: time.Hour},
		KeepQueues: []string{"audit"},
		Limit:      1,
	}
	if n := pruneJobs(ctx, t, drv, p); n != 1 {
		t.Errorf("first prune (limit 1) deleted %d jobs, want 1", n)
	}
	if n := pruneJobs(ctx, t, drv, p); n != 1 {
		t.Errorf("second prune (limit 1) deleted %d jobs, want 1", n)
	}
	if n := pruneJobs(ctx, t, drv, p); n != 0 {
		t.Errorf("third prune deleted %d jobs, want 0 (nothing else is due)", n)
	}
	want := slices.DeleteFunc(slices.Clone(all), func(id int64) bool { return slices.Contains(byState[acidic.JobCompleted], id) })
	if got := left(); !slices.Equal(got, want) {
		t.Errorf("after pruning completed jobs: %v left, want %v", got, want)
	}
	// Then cancelled and discarded at once: the audit queue and the
	// unfinished jobs stay.
	p.Retention = map[acidic.JobState]time.Duration{acidic.JobCompleted: 0, acidic.JobCancelled: 0, acidic.JobDiscarded: 0}
	p.Limit = 100
	if n := pruneJobs(ctx, t, drv, p); n != 4 {
		t.Errorf("prune of cancelled and discarded jobs deleted %d, want 4", n)
	}
	want = slices.Sorted(slices.Values(append(slices.Clone(audit), unfinished...)))
	if got := left(); !slices.Equal(got, want) {
		t.Errorf("after pruning every state: %v left, want %v (the audit queue and the unfinished jobs)", got, want)
	}
	// Without the keep, the audit queue goes too.
	p.KeepQueues = nil
	if n := pruneJobs(ctx, t, drv, p); n != 3 {
		t.Errorf("prune without kept queues deleted %d, want 3", n)
	}
	if got := left(); !slices.Equal(got, unfinished) {
		t.Errorf("in the end %v left, want the unfinished %v", got, unfinished)
	}
	// No retention named: nothing to do.
	if n := pruneJobs(ctx, t, drv, storage.JobPruneByStateParams{Limit: 10}); n != 0 {
		t.Errorf("prune without retention deleted %d", n)
	}
}

// testJobPruneByStateKeepsWhatOthersNeed: a finished job that a pending job
// still depends on, and a finished job whose attempt still holds its run's
// lease, are kept whatever their age.
func testJobPruneByStateKeepsWhatOthersNeed(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	// A dependency cancelled before its dependent was resolved.
	dep := insertJobs(ctx, t, drv, job("g"))[0]
	waiting := job("g")
	waiting.State, waiting.DependsOn = acidic.JobPending, []int64{dep.ID}
	dependent := insertJobs(ctx, t, drv, waiting)[0]
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: dep.ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	// A job that completed while its attempt held its run's lease.
	r := insertRun(ctx, t, drv, "leased")
	holder := runningJob(ctx, t, drv, r.ID)
	if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "tok", Job: holder}); !ok {
		t.Fatal("set-up: lease refused")
	}
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{holder}}); err != nil || len(done) != 1 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	all := map[acidic.JobState]time.Duration{acidic.JobCompleted: 0, acidic.JobCancelled: 0, acidic.JobDiscarded: 0}
	if n := pruneJobs(ctx, t, drv, storage.JobPruneByStateParams{Retention: all, Limit: 100}); n != 0 {
		t.Errorf("prune deleted %d jobs, want 0", n)
	}
	if !jobExists(ctx, t, drv, dep.ID) {
		t.Errorf("the cancelled dependency of pending job %d was pruned: its dependent can no longer learn it failed", dependent.ID)
	}
	if !jobExists(ctx, t, drv, holder.ID) {
		t.Errorf("job %d, whose attempt holds run %s's lease, was pruned: the lease could never be taken over", holder.ID, r.ID)
	}
	// Once the dependent is resolved and the lease given up, both go.
	if _, _, err := drv.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: []int64{dep.ID}}); err != nil {
		t.Fatalf("JobResolveDependencies: %v", err)
	}
	if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunRunning}, To: acidic.RunPending, Error: ""}); err != nil || !changed {
		t.Fatalf("RunSetState = %v, %v", changed, err)
	}
	if n := pruneJobs(ctx, t, drv, storage.JobPruneByStateParams{Retention: all, Limit: 100}); n != 3 {
		t.Errorf("prune after resolving deleted %d jobs, want 3 (the dependency, its cancelled dependent, the lease holder)", n)
	}
}

// testRunPrune: each final state is pruned by its own retention, with the
// run's step log and finished jobs (those of kept job queues detached);
// kept workflows, states not named and unfinished runs stay.
func testRunPrune(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	succeeded := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, true)
	failed := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunFailed, true)
	cancelled := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunCancelled, true)
	kept := finishedRun(ctx, t, drv, runOf("audited"), acidic.RunSucceeded, true)
	pending := insertRunWith(ctx, t, drv, runOf("wf"))
	halted := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunHalted, false)
	// A succeeded run with a step log, a completed job and a completed job
	// in a kept queue.
	logged := withStepLog(ctx, t, drv, "logged")
	ended := getJob(ctx, t, drv, listJobs(ctx, t, drv, acidic.JobFilter{RunID: logged.ID})[0].ID)
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: ended.ID, Attempt: ended.Attempt}}}); err != nil || len(done) != 1 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	keptJob := job("ledger")
	keptJob.RunID = logged.ID
	kj := insertJobs(ctx, t, drv, keptJob)[0]
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: kj.ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: logged.ID, Token: "tok", State: acidic.RunSucceeded, RecoveryPoint: "step2",
		Release: true, Settle: true, Attrs: []byte(`{}`)}); err != nil {
		t.Fatalf("RunUpdate(succeeded): %v", err)
	}

	p := storage.RunPruneParams{
		Retention:     map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0, acidic.RunFailed: time.Hour},
		KeepWorkflows: []string{"audited"},
		KeepJobQueues: []string{"ledger"},
		Limit:         1,
	}
	if n := pruneRuns(ctx, t, drv, p); n != 1 {
		t.Errorf("first prune (limit 1) deleted %d runs, want 1", n)
	}
	p.Limit = 100
	if n := pruneRuns(ctx, t, drv, p); n != 1 {
		t.Errorf("second prune deleted %d runs, want 1", n)
	}
	for _, r := range []*acidic.Run{succeeded, logged} {
		if runExists(ctx, t, drv, r.ID) {
			t.Errorf("succeeded run %s was not pruned", r.IdempotencyKey)
		}
	}
	for _, r := range []*acidic.Run{failed, cancelled, kept, pending, halted} {
		if !runExists(ctx, t, drv, r.ID) {
			t.Errorf("run %s (%s) was pruned", r.IdempotencyKey, r.State)
		}
	}
	if steps := runSteps(ctx, t, drv, logged.ID); len(steps) != 0 {
		t.Errorf("the pruned run's step log is still there: %+v", steps)
	}
	if jobExists(ctx, t, drv, ended.ID) {
		t.Errorf("the pruned run's completed job %d is still there", ended.ID)
	}
	if j := getJob(ctx, t, drv, kj.ID); j.RunID != uuid.Nil {
		t.Errorf("the pruned run's job in a kept queue still names the run: %s", j.RunID)
	}
	// Every state at once: failed and cancelled go, the kept workflow and
	// the unfinished runs stay.
	p.Retention = map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0, acidic.RunFailed: 0, acidic.RunCancelled: 0}
	if n := pruneRuns(ctx, t, drv, p); n != 2 {
		t.Errorf("prune of every state deleted %d runs, want 2", n)
	}
	for _, r := range []*acidic.Run{kept, pending, halted} {
		if !runExists(ctx, t, drv, r.ID) {
			t.Errorf("run %s (%s) was pruned", r.IdempotencyKey, r.State)
		}
	}
	if n := pruneRuns(ctx, t, drv, storage.RunPruneParams{Limit: 10}); n != 0 {
		t.Errorf("prune without retention deleted %d runs", n)
	}
}

// testRunPruneKeepsWhatOthersNeed: a finished run is kept while it has not
// settled, while a job of it has not finished (its OnFinish callback), while
// a child of it has not finished, and, as a child, while its parent exists.
func testRunPruneKeepsWhatOthersNeed(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	unsettled := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, false)
	callback := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, true)
	cb := job("default")
	cb.Kind, cb.RunID = "acidic.finish", callback.ID
	cbJob := insertJobs(ctx, t, drv, cb)[0]
	// A finished parent with a finished child and an unsettled child.
	parent := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunFailed, true)
	done := finishedRun(ctx, t, drv, childOf(parent.ID), acidic.RunSucceeded, true)
	late := finishedRun(ctx, t, drv, childOf(parent.ID), acidic.RunSucceeded, false)

	all := storage.RunPruneParams{Limit: 100, Retention: map[acidic.RunState]time.Duration{
		acidic.RunSucceeded: 0, acidic.RunFailed: 0, acidic.RunCancelled: 0}}
	if n := pruneRuns(ctx, t, drv, all); n != 0 {
		t.Errorf("prune deleted %d runs, want 0", n)
	}
	for what, r := range map[string]*acidic.Run{
		"a run whose finish is not settled":             unsettled,
		"a run whose OnFinish job has not run":          callback,
		"a parent with an unsettled child":              parent,
		"a settled child of a parent that still exists": done,
		"an unsettled child":                            late,
	} {
		if !runExists(ctx, t, drv, r.ID) {
			t.Errorf("%s was pruned", what)
		}
	}
	// The obligations met: the callback ran, the child settled. The parent
	// goes first; its children, detached, in the next prune.
	if done, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: cbJob.ID, WorkerID: "w"}); err != nil || done == nil {
		t.Fatalf("JobClaim: %v", err)
	}
	if got, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(cbJob.ID)}}); err != nil || len(got) != 1 {
		t.Fatalf("JobComplete = %v, %v", got, err)
	}
	for _, r := range []*acidic.Run{unsettled, late} {
		if _, ok, err := drv.RunSettle(ctx, storage.RunSettleParams{ID: r.ID}); err != nil || !ok {
			t.Fatalf("RunSettle = %v, %v", ok, err)
		}
	}
	if n := pruneRuns(ctx, t, drv, all); n != 3 {
		t.Errorf("prune after the obligations deleted %d runs, want 3 (the unsettled run, the callback's run, the parent)", n)
	}
	for _, c := range []*acidic.Run{done, late} {
		got := getRun(ctx, t, drv, c.ID)
		if got.ParentRunID != uuid.Nil {
			t.Errorf("child %s still names its deleted parent %s", c.ID, got.ParentRunID)
		}
	}
	if n := pruneRuns(ctx, t, drv, all); n != 2 {
		t.Errorf("prune of the detached children deleted %d runs, want 2", n)
	}
}

// testRunDelete: a finished run is deleted with its step log and finished
// jobs, and returned as it was; the job named by Except stays, detached;
// children stay, detached.
func testRunDelete(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := withStepLog(ctx, t, drv, "doomed")
	carrier := listJobs(ctx, t, drv, acidic.JobFilter{RunID: r.ID})[0]
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "tok", State: acidic.RunSucceeded, RecoveryPoint: "step2",
		Release: true, Settle: true, Attrs: []byte(`{}`)}); err != nil {
		t.Fatalf("RunUpdate(succeeded): %v", err)
	}
	if got, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: carrier.ID, Attempt: carrier.Attempt}}}); err != nil || len(got) != 1 {
		t.Fatalf("JobComplete = %v, %v", got, err)
	}
	// Its OnFinish callback, running: the one asking for the deletion.
	cb := job("default")
	cb.Kind, cb.RunID = "acidic.finish", r.ID
	cbJob := insertJobs(ctx, t, drv, cb)[0]
	if _, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: cbJob.ID, WorkerID: "w"}); err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	child := finishedRun(ctx, t, drv, childOf(r.ID), acidic.RunSucceeded, true)
	before := getRun(ctx, t, drv, r.ID)

	got, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: r.ID, Except: cbJob.ID})
	if err != nil {
		t.Fatalf("RunDelete: %v", err)
	}
	if got == nil || got.ID != r.ID || got.State != acidic.RunSucceeded || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("RunDelete returned %+v, want the run as it was (%+v)", got, before)
	}
	if runExists(ctx, t, drv, r.ID) {
		t.Error("the run is still there")
	}
	if steps := runSteps(ctx, t, drv, r.ID); len(steps) != 0 {
		t.Errorf("its step log is still there: %+v", steps)
	}
	if jobExists(ctx, t, drv, carrier.ID) {
		t.Errorf("its completed job %d is still there", carrier.ID)
	}
	if j := getJob(ctx, t, drv, cbJob.ID); j.State != acidic.JobRunning || j.RunID != uuid.Nil {
		t.Errorf("the callback job is %s of run %s, want running, detached", j.State, j.RunID)
	}
	if c := getRun(ctx, t, drv, child.ID); c.ParentRunID != uuid.Nil {
		t.Errorf("the child still names its deleted parent %s", c.ParentRunID)
	}
	if _, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: r.ID}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("second RunDelete: %v, want acidic.ErrNotFound", err)
	}
	// Inside a transaction, the same; a rollback keeps the run.
	other := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunCancelled, true)
	err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.RunDelete(ctx, storage.RunDeleteParams{ID: other.ID}); err != nil {
			t.Errorf("RunDelete in a transaction: %v", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v", err)
	}
	if !runExists(ctx, t, drv, other.ID) {
		t.Error("a run deleted in a transaction that rolled back is gone")
	}
}

// testRunDeleteRefusesWhatIsInUse: a run that has not finished, has not
// settled, has an unfinished job, an unfinished child, or an unfinished
// parent is ErrInUse, and nothing is deleted.
func testRunDeleteRefusesWhatIsInUse(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	running := withStepLog(ctx, t, drv, "running")
	unsettled := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunFailed, false)
	withJob := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, true)
	cb := job("default")
	cb.Kind, cb.RunID = "acidic.finish", withJob.ID
	cbJob := insertJobs(ctx, t, drv, cb)[0]
	parent := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, true)
	insertRunWith(ctx, t, drv, childOf(parent.ID))
	awaiting := awaitingParent(ctx, t, drv, "awaiting", 1)
	child := finishedRun(ctx, t, drv, childOf(awaiting.ID), acidic.RunSucceeded, true)
	cases := []struct {
		what   string
		p      storage.RunDeleteParams
		reason string
	}{
		{"a running run", storage.RunDeleteParams{ID: running.ID}, "running"},
		{"an unsettled run", storage.RunDeleteParams{ID: unsettled.ID}, "not settled"},
		{"a run with a pending job", storage.RunDeleteParams{ID: withJob.ID}, "acidic.finish"},
		{"a run with a pending job, excepting another", storage.RunDeleteParams{ID: withJob.ID, Except: cbJob.ID + 1000}, "acidic.finish"},
		{"a run with an unfinished child", storage.RunDeleteParams{ID: parent.ID}, "child run"},
		{"a child of an awaiting parent", storage.RunDeleteParams{ID: child.ID}, "parent run"},
	}
	for _, c := range cases {
		before := getRun(ctx, t, drv, c.p.ID)
		stepsBefore := runSteps(ctx, t, drv, c.p.ID)
		jobsBefore := listJobs(ctx, t, drv, acidic.JobFilter{RunID: c.p.ID})
		_, err := drv.RunDelete(ctx, c.p)
		if !errors.Is(err, acidic.ErrInUse) || !strings.Contains(fmt.Sprint(err), c.reason) {
			t.Errorf("RunDelete of %s: %v, want ErrInUse saying %q", c.what, err, c.reason)
		}
		after, err := drv.RunGet(ctx, storage.RunGetParams{ID: c.p.ID})
		if err != nil || !after.UpdatedAt.Equal(before.UpdatedAt) || after.State != before.State {
			t.Errorf("RunDelete of %s changed the run: %+v, %v", c.what, after, err)
		}
		if got := runSteps(ctx, t, drv, c.p.ID); len(got) != len(stepsBefore) {
			t.Errorf("RunDelete of %s changed the step log: %d entries, had %d", c.what, len(got), len(stepsBefore))
		}
		if got := listJobs(ctx, t, drv, acidic.JobFilter{RunID: c.p.ID}); len(got) != len(jobsBefore) {
			t.Errorf("RunDelete of %s changed the jobs: %d, had %d", c.what, len(got), len(jobsBefore))
		}
	}
	if _, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: uuid.New()}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("RunDelete of an unknown run: %v, want acidic.ErrNotFound", err)
	}
	// The pending job excepted: the run goes, the job stays, detached.
	if _, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: withJob.ID, Except: cbJob.ID}); err != nil {
		t.Errorf("RunDelete excepting its pending job: %v", err)
	}
	if j := getJob(ctx, t, drv, cbJob.ID); j.RunID != uuid.Nil || j.State != acidic.JobAvailable {
		t.Errorf("the excepted job is %s of run %s, want available, detached", j.State, j.RunID)
	}
}

// testRetentionRefusesInvalidParams: bad parameters are acidic.ErrInvalid and
// delete nothing.
func testRetentionRefusesInvalidParams(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := finishedRun(ctx, t, drv, runOf("wf"), acidic.RunSucceeded, true)
	j := insertJobs(ctx, t, drv, job("q"))[0]
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: j.ID}); err != nil {
		t.Fatal(err)
	}
	jobCases := map[string]storage.JobPruneByStateParams{
		"an unfinished state": {Limit: 10, Retention: map[acidic.JobState]time.Duration{acidic.JobCancelled: 0, acidic.JobRunning: 0}},
		"a negative duration": {Limit: 10, Retention: map[acidic.JobState]time.Duration{acidic.JobCancelled: -time.Second}},
		"a limit of 0":        {Retention: map[acidic.JobState]time.Duration{acidic.JobCancelled: 0}},
		"a bad queue name":    {Limit: 10, Retention: map[acidic.JobState]time.Duration{acidic.JobCancelled: 0}, KeepQueues: []string{"a\x00b"}},
	}
	for what, p := range jobCases {
		if n, err := drv.JobPruneByState(ctx, p); !errors.Is(err, acidic.ErrInvalid) || n != 0 {
			t.Errorf("JobPruneByState with %s = %d, %v; want acidic.ErrInvalid", what, n, err)
		}
	}
	runCases := map[string]storage.RunPruneParams{
		"an unfinished state":  {Limit: 10, Retention: map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0, acidic.RunHalted: 0}},
		"a negative duration":  {Limit: 10, Retention: map[acidic.RunState]time.Duration{acidic.RunSucceeded: -1}},
		"a limit of 0":         {Retention: map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0}},
		"a bad workflow name":  {Limit: 10, Retention: map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0}, KeepWorkflows: []string{""}},
		"a bad kept job queue": {Limit: 10, Retention: map[acidic.RunState]time.Duration{acidic.RunSucceeded: 0}, KeepJobQueues: []string{"\n"}},
	}
	for what, p := range runCases {
		if n, err := drv.RunPrune(ctx, p); !errors.Is(err, acidic.ErrInvalid) || n != 0 {
			t.Errorf("RunPrune with %s = %d, %v; want acidic.ErrInvalid", what, n, err)
		}
	}
	if _, err := drv.RunDelete(ctx, storage.RunDeleteParams{}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("RunDelete without an ID: %v, want acidic.ErrInvalid", err)
	}
	if _, err := drv.RunDelete(ctx, storage.RunDeleteParams{ID: r.ID, KeepJobQueues: []string{""}}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("RunDelete with a bad kept queue: %v, want acidic.ErrInvalid", err)
	}
	if !runExists(ctx, t, drv, r.ID) || !jobExists(ctx, t, drv, j.ID) {
		t.Error("a refused call deleted something")
	}
}
