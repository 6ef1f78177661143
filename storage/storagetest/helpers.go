package storagetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// near reports whether got is within tolerance of want.
func near(got, want time.Time, tolerance time.Duration) bool {
	d := got.Sub(want)
	return d >= -tolerance && d <= tolerance
}

// jsonEqual compares two JSON documents by value (a store may reformat them).
func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// heartbeat runs JobHeartbeat and returns the lost attempts sorted by id.
func heartbeat(ctx context.Context, t *testing.T, drv storage.Driver, attempts ...storage.JobAttempt) []storage.JobStatus {
	t.Helper()
	lost, err := drv.JobHeartbeat(ctx, storage.JobHeartbeatParams{Attempts: attempts})
	if err != nil {
		t.Fatalf("JobHeartbeat(%v): %v", attempts, err)
	}
	slices.SortFunc(lost, func(a, b storage.JobStatus) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Attempt, b.Attempt))
	})
	return lost
}

func attempt1(id int64) storage.JobAttempt { return storage.JobAttempt{ID: id, Attempt: 1} }

func runInsert(key string) storage.RunInsertParams {
	return storage.RunInsertParams{
		ID:             uuid.New(),
		IdempotencyKey: key,
		Workflow:       "wf",
		Args:           json.RawMessage(`{"a":1}`),
		Queue:          "runs",
		RecoveryPoint:  "step1",
		DefinitionHash: "hash",
	}
}

func insertRunWith(ctx context.Context, t *testing.T, e storage.Executor, in storage.RunInsertParams) *acidic.Run {
	t.Helper()
	r, created, err := e.RunInsert(ctx, in)
	if err != nil {
		t.Fatalf("RunInsert(%s): %v", in.IdempotencyKey, err)
	}
	if !created {
		t.Fatalf("RunInsert(%s) created = false, want true", in.IdempotencyKey)
	}
	return r
}

func insertRun(ctx context.Context, t *testing.T, e storage.Executor, key string) *acidic.Run {
	t.Helper()
	return insertRunWith(ctx, t, e, runInsert(key))
}

func getRun(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) *acidic.Run {
	t.Helper()
	r, err := e.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil {
		t.Fatalf("RunGet(%s): %v", id, err)
	}
	return r
}

// runningJob inserts a job of run and claims it without leasing the run, so
// that a test can take the lease with the attempt explicitly.
func runningJob(ctx context.Context, t *testing.T, drv storage.Driver, run uuid.UUID) storage.JobAttempt {
	t.Helper()
	in := job("lease_" + uuid.NewString())
	in.RunID = run
	j := insertJobs(ctx, t, drv, in)[0]
	claimed, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: "w"})
	if err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	return storage.JobAttempt{ID: claimed.ID, Attempt: claimed.Attempt}
}

// leasedRun inserts a run and leases it with token.
func leasedRun(ctx context.Context, t *testing.T, drv storage.Driver, key, token string) *acidic.Run {
	t.Helper()
	r := insertRun(ctx, t, drv, key)
	if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: token, Job: runningJob(ctx, t, drv, r.ID)}); !ok {
		t.Fatalf("lease of %s refused", key)
	}
	return r
}

func lease(ctx context.Context, t *testing.T, e storage.Executor, p storage.RunLeaseParams) (*acidic.Run, bool) {
	t.Helper()
	r, ok, err := e.RunLease(ctx, p)
	if err != nil {
		t.Fatalf("RunLease(%s, %s): %v", p.ID, p.Token, err)
	}
	if r == nil || r.ID != p.ID {
		t.Fatalf("RunLease(%s) returned run %+v", p.ID, r)
	}
	return r, ok
}

// runSteps returns a run's step log, failing the test on error.
func runSteps(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) []acidic.Step {
	t.Helper()
	steps, err := e.RunSteps(ctx, storage.RunStepsParams{ID: id})
	if err != nil {
		t.Fatalf("RunSteps(%s): %v", id, err)
	}
	return steps
}

// releaseRun calls RunRelease and fails the test on error.
func releaseRun(ctx context.Context, t *testing.T, e storage.Executor, rr storage.RunReleaseParams) *acidic.Run {
	t.Helper()
	r, err := e.RunRelease(ctx, rr)
	if err != nil {
		t.Fatalf("RunRelease(%s, %s -> %s): %v", rr.ID, rr.Token, rr.State, err)
	}
	if r == nil || r.ID != rr.ID {
		t.Fatalf("RunRelease(%s) returned run %+v", rr.ID, r)
	}
	return r
}

// progressedRun inserts a run, leases it with token and moves its progress
// (recovery point, attrs, cursor) off the defaults with a fenced RunUpdate,
// logging a succeeded step at position 0. It returns the run as stored.
func progressedRun(ctx context.Context, t *testing.T, drv storage.Driver, key, token string) *acidic.Run {
	t.Helper()
	r := leasedRun(ctx, t, drv, key, token)
	started := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{
		ID: r.ID, Token: token, State: acidic.RunRunning, RecoveryPoint: "step2",
		Attrs: json.RawMessage(`{"progress":7}`), Cursor: 42,
		Step: &acidic.Step{Position: 0, Name: "step1", State: acidic.StepSucceeded, Attempt: 1,
			Result: json.RawMessage(`{"one":1}`), StartedAt: started},
	})
	if err != nil {
		t.Fatalf("RunUpdate(%s): %v", key, err)
	}
	return getRun(ctx, t, drv, r.ID)
}

// wantReleased checks that got is before given up with state and errText:
// the lease cleared, updated_at moved, finished_at set exactly when the state
// is final, and every other field (recovery point, attrs, cursor, awaiting,
// result, args, ...) as before.
func wantReleased(t *testing.T, got, before *acidic.Run, state acidic.RunState, errText string) {
	t.Helper()
	if got.State != state || got.Error != errText {
		t.Errorf("released run: state %s, error %q; want %s, %q", got.State, got.Error, state, errText)
	}
	if got.LockedBy != "" || got.LockedAt != nil {
		t.Errorf("released run still leased: %q at %v", got.LockedBy, got.LockedAt)
	}
	if (got.FinishedAt != nil) != state.Final() {
		t.Errorf("released run in state %s: finished at %v", got.State, got.FinishedAt)
	}
	if !got.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("released run: updated_at %v not after %v", got.UpdatedAt, before.UpdatedAt)
	}
	want := *before
	want.State, want.Error = state, errText
	want.LockedBy, want.LockedAt = "", nil
	want.UpdatedAt, want.FinishedAt = got.UpdatedAt, got.FinishedAt
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("RunRelease changed more than state, error and lease:\n got %+v\nwant %+v", got, &want)
	}
}

// awaitingParent inserts a run and parks it awaiting n children at step
// "fanout" (position 1), after a succeeded step "prep" at position 0, as a
// step that spawned n awaited children would.
func awaitingParent(ctx context.Context, t *testing.T, drv storage.Driver, key string, n int) *acidic.Run {
	t.Helper()
	r := leasedRun(ctx, t, drv, key, "p")
	started := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "p", State: acidic.RunRunning, RecoveryPoint: "fanout",
		Attrs: json.RawMessage(`{"n":1}`),
		Step:  &acidic.Step{Position: 0, Name: "prep", State: acidic.StepSucceeded, Attempt: 1, StartedAt: started}}); err != nil {
		t.Fatalf("RunUpdate(%s, prep): %v", key, err)
	}
	parked, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "p", State: acidic.RunAwaiting, RecoveryPoint: "after",
		Attrs: json.RawMessage(`{"n":2}`), Awaiting: n, Release: true,
		Step: &acidic.Step{Position: 1, Name: "fanout", State: acidic.StepAwaiting, Attempt: 1, StartedAt: started}})
	if err != nil {
		t.Fatalf("RunUpdate(%s, fanout): %v", key, err)
	}
	if parked.State != acidic.RunAwaiting || parked.Awaiting != n || parked.LockedBy != "" || parked.FinishedAt != nil {
		t.Fatalf("set-up: parked parent = %+v, want awaiting %d, unleased", parked, n)
	}
	return parked
}

// newChild inserts a child run of parent, awaited by its step, and returns
// its id.
func newChild(ctx context.Context, t *testing.T, drv storage.Driver, parent uuid.UUID, step string) uuid.UUID {
	t.Helper()
	in := runInsert("child-" + uuid.NewString())
	in.ParentRunID, in.ParentStep = parent, step
	return insertRunWith(ctx, t, drv, in).ID
}

// stepNamed returns the step of the log with the given name.
func stepNamed(t *testing.T, steps []acidic.Step, name string) acidic.Step {
	t.Helper()
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, steps)
	return acidic.Step{}
}

func stepUpdate(r *acidic.Run, token, next string) storage.RunUpdateParams {
	return storage.RunUpdateParams{ID: r.ID, Token: token, State: acidic.RunRunning, RecoveryPoint: next,
		Attrs: []byte(`{"n":1}`), Step: &acidic.Step{Position: 0, Name: r.RecoveryPoint, State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}}
}

// testCtx returns a context for one test, ended when it ends. Its deadline
// is generous: parallel subtests that share their parent's
// context may wait long for a slot on a busy machine before they start (the
// test binary's -timeout still bounds a hang).
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// job returns a JobInsert for an available job of queue q with sensible defaults.
func job(q string) storage.JobInsert {
	return storage.JobInsert{
		Queue:       q,
		Kind:        "test_kind",
		Args:        json.RawMessage(`{}`),
		State:       acidic.JobAvailable,
		MaxAttempts: 3,
	}
}

func insertJobs(ctx context.Context, t *testing.T, e storage.Executor, jobs ...storage.JobInsert) []*acidic.Job {
	t.Helper()
	out, err := e.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: jobs})
	if err != nil {
		t.Fatalf("JobInsertMany: %v", err)
	}
	if len(out) != len(jobs) {
		t.Fatalf("JobInsertMany returned %d jobs, want %d", len(out), len(jobs))
	}
	return out
}

func getJob(ctx context.Context, t *testing.T, e storage.Executor, id int64) *acidic.Job {
	t.Helper()
	j, err := e.JobGet(ctx, storage.JobGetParams{ID: id})
	if err != nil {
		t.Fatalf("JobGet(%d): %v", id, err)
	}
	return j
}

func listJobs(ctx context.Context, t *testing.T, e storage.Executor, f acidic.JobFilter) []*acidic.Job {
	t.Helper()
	jobs, err := e.JobList(ctx, f)
	if err != nil {
		t.Fatalf("JobList(%+v): %v", f, err)
	}
	return jobs
}

// fetchOne claims exactly one job of queue q for worker and fails otherwise.
func fetchOne(ctx context.Context, t *testing.T, e storage.Executor, q, worker string) *acidic.Job {
	t.Helper()
	jobs, err := e.JobFetch(ctx, storage.JobFetchParams{Queue: q, Max: 1, WorkerID: worker})
	if err != nil {
		t.Fatalf("JobFetch(%s): %v", q, err)
	}
	if len(jobs) != 1 {
		t.Fatalf("JobFetch(%s) returned %d jobs, want 1", q, len(jobs))
	}
	return jobs[0].Job
}

func ids[J *acidic.Job | storage.FetchedJob](jobs []J) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		switch j := any(j).(type) {
		case *acidic.Job:
			out[i] = j.ID
		case storage.FetchedJob:
			out[i] = j.ID
		}
	}
	return out
}

func newListener(ctx context.Context, t *testing.T, drv storage.Driver, topics ...string) storage.Listener {
	t.Helper()
	l, err := drv.NewListener(ctx)
	if err != nil {
		t.Fatalf("NewListener: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	for _, topic := range topics {
		if err := l.Listen(ctx, topic); err != nil {
			t.Fatalf("Listen(%s): %v", topic, err)
		}
	}
	return l
}

// waitNone checks that nothing arrives within d.
func waitNone(ctx context.Context, t *testing.T, l storage.Listener, d time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n, err := l.Wait(wctx)
	if err == nil {
		t.Fatalf("got notification %+v, want none within %v", n, d)
	}
	if !errors.Is(err, context.DeadlineExceeded) && wctx.Err() == nil {
		t.Fatalf("Wait: %v, want a timeout", err)
	}
}

func waitOne(ctx context.Context, t *testing.T, l storage.Listener) storage.Notification {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := l.Wait(wctx)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return n
}

// queueHint returns the payload of queue's insert notifications.
func queueHint(ctx context.Context, t *testing.T, drv storage.Driver, queue string) string {
	t.Helper()
	hints, err := drv.QueueHints(ctx, storage.QueueHintsParams{Queues: []string{queue}})
	if err != nil || len(hints) != 1 {
		t.Fatalf("QueueHints(%q) = %v, %v", queue, hints, err)
	}
	return hints[0]
}
