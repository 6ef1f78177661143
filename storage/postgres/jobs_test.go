package postgres_test

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// near reports whether got is within tolerance of want.
func near(got, want time.Time, tolerance time.Duration) bool {
	d := got.Sub(want)
	return d >= -tolerance && d <= tolerance
}

// backdateHeartbeat moves the heartbeat of jobs into the past.
func backdateHeartbeat(ctx context.Context, t *testing.T, drv *postgres.Driver, by time.Duration, ids ...int64) {
	t.Helper()
	if n := exec(ctx, t, drv, `UPDATE {schema}.jobs SET heartbeat_at = now() - $1::interval WHERE id = ANY($2)`, by, ids); n != int64(len(ids)) {
		t.Fatalf("backdated %d heartbeats, want %d", n, len(ids))
	}
}

func heartbeatAt(ctx context.Context, t *testing.T, drv *postgres.Driver, id int64) *time.Time {
	t.Helper()
	var at *time.Time
	if err := drv.Pool().QueryRow(ctx, "SELECT heartbeat_at FROM "+table(drv, "jobs")+" WHERE id = $1", id).Scan(&at); err != nil {
		t.Fatalf("read heartbeat of %d: %v", id, err)
	}
	return at
}

// heartbeat runs JobHeartbeat and returns the lost attempts sorted by id.
func heartbeat(ctx context.Context, t *testing.T, drv *postgres.Driver, attempts ...storage.JobAttempt) []storage.JobStatus {
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

// JobLostAttempts reports the attempts that are no longer running, like
// JobHeartbeat, and writes nothing: no heartbeat, no row version.
func TestJobLostAttemptsOnlyReads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"))
	if claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 2, WorkerID: "w"}); err != nil || len(claimed) != 2 {
		t.Fatalf("JobFetch = %v, %v; want 2 jobs", ids(claimed), err)
	}
	running, cancelled := jobs[0].ID, jobs[1].ID
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: cancelled}); err != nil {
		t.Fatal(err)
	}
	backdateHeartbeat(ctx, t, drv, time.Hour, running)
	versions := func() string {
		var v string
		if err := drv.Pool().QueryRow(ctx, "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM "+table(drv, "jobs")).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := versions()
	stale := storage.JobAttempt{ID: running, Attempt: 2}
	lost, err := drv.JobLostAttempts(ctx, storage.JobLostAttemptsParams{Attempts: []storage.JobAttempt{attempt1(running), attempt1(cancelled), stale}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lost, func(a, b storage.JobStatus) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Attempt, b.Attempt))
	})
	want := []storage.JobStatus{
		{JobAttempt: stale, State: acidic.JobRunning, CurrentAttempt: 1},
		{JobAttempt: attempt1(cancelled), State: acidic.JobCancelled, CurrentAttempt: 1},
	}
	if !slices.Equal(lost, want) {
		t.Errorf("JobLostAttempts = %v, want %v", lost, want)
	}
	if after := versions(); after != before {
		t.Errorf("JobLostAttempts wrote rows: versions %s, were %s", after, before)
	}
	if at := heartbeatAt(ctx, t, drv, running); at == nil || near(*at, time.Now(), 30*time.Minute) {
		t.Errorf("JobLostAttempts refreshed the heartbeat of %d (%v)", running, at)
	}
	if lost, err := drv.JobLostAttempts(ctx, storage.JobLostAttemptsParams{Attempts: nil}); err != nil || len(lost) != 0 {
		t.Errorf("JobLostAttempts(nothing) = %v, %v", lost, err)
	}
}

func TestJobHeartbeatAndRescue(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})

	last := job("q")
	last.MaxAttempts = 1
	jobs := insertJobs(ctx, t, drv, job("q"), last, job("q"), job("q"))
	claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 4, WorkerID: "w1"})
	if err != nil || len(claimed) != 4 {
		t.Fatalf("JobFetch = %v, %v; want 4 jobs", ids(claimed), err)
	}
	retry, discard, beating, stranger := jobs[0].ID, jobs[1].ID, jobs[2].ID, jobs[3].ID

	backdateHeartbeat(ctx, t, drv, time.Hour, retry, discard, beating, stranger)
	// The running attempt of "beating" is heartbeated; a heartbeat for an
	// attempt of "stranger" that is not the running one must not count.
	if lost := heartbeat(ctx, t, drv, attempt1(beating)); len(lost) != 0 {
		t.Errorf("JobHeartbeat(running attempt) reported lost jobs %v, want none", lost)
	}
	wrong := storage.JobAttempt{ID: stranger, Attempt: 2}
	if lost, want := heartbeat(ctx, t, drv, wrong), []storage.JobStatus{{JobAttempt: wrong, State: acidic.JobRunning, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat(an attempt not running) = %v, want %v", lost, want)
	}
	if lost := heartbeat(ctx, t, drv); len(lost) != 0 {
		t.Errorf("JobHeartbeat(no ids) = %v, want nothing", lost)
	}
	if at := heartbeatAt(ctx, t, drv, beating); at == nil || !near(*at, time.Now(), time.Minute) {
		t.Errorf("heartbeat of %d = %v after JobHeartbeat, want now", beating, at)
	}
	if at := heartbeatAt(ctx, t, drv, stranger); at == nil || near(*at, time.Now(), 30*time.Minute) {
		t.Errorf("heartbeat of %d = %v after another worker's JobHeartbeat, want an hour ago", stranger, at)
	}

	// The limit caps a pass.
	first, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: 10 * time.Minute, Limit: 1})
	if err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	if len(first) != 1 {
		t.Fatalf("JobRescue(limit 1) rescued %v, want 1 job", ids(first))
	}
	second, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: 10 * time.Minute, Limit: 10})
	if err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	rescued := append(first, second...)
	got := ids(rescued)
	slices.Sort(got)
	if want := []int64{retry, discard, stranger}; !slices.Equal(got, want) {
		t.Fatalf("rescued %v, want %v", got, want)
	}
	for _, j := range rescued {
		want := acidic.JobRetryable
		if j.ID == discard {
			want = acidic.JobDiscarded
		}
		if j.State != want {
			t.Errorf("rescued job %d is %s, want %s", j.ID, j.State, want)
		}
		if (j.FinalizedAt != nil) != (want == acidic.JobDiscarded) {
			t.Errorf("rescued job %d (%s) finalized at %v", j.ID, j.State, j.FinalizedAt)
		}
		if len(j.Errors) != 1 || j.Errors[0].Attempt != 1 || !strings.Contains(j.Errors[0].Error, "rescued") ||
			!strings.Contains(j.Errors[0].Error, "w1") || !near(j.Errors[0].At, time.Now(), time.Minute) {
			t.Errorf("rescued job %d errors = %+v, want one 'rescued' entry for attempt 1 by w1", j.ID, j.Errors)
		}
		if stored := getJob(ctx, t, drv, j.ID); !reflect.DeepEqual(stored, j) {
			t.Errorf("JobGet(%d) = %+v, want the rescued job %+v", j.ID, stored, j)
		}
	}
	if j := getJob(ctx, t, drv, beating); j.State != acidic.JobRunning || len(j.Errors) != 0 {
		t.Errorf("heartbeating job is %s with errors %v, want running, none", j.State, j.Errors)
	}
	// The worker learns on its next heartbeat that it lost the rescued jobs;
	// the one it still holds stays running.
	wantLost := []storage.JobStatus{{JobAttempt: attempt1(retry), State: acidic.JobRetryable, CurrentAttempt: 1}, {JobAttempt: attempt1(discard), State: acidic.JobDiscarded, CurrentAttempt: 1}}
	if lost := heartbeat(ctx, t, drv, attempt1(retry), attempt1(discard), attempt1(beating)); !slices.Equal(lost, wantLost) {
		t.Errorf("JobHeartbeat after rescue = %v, want %v", lost, wantLost)
	}
	// Nothing stale is left; a retryable rescued job is fetchable again.
	if more, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: 10 * time.Minute, Limit: 10}); err != nil || len(more) != 0 {
		t.Errorf("third JobRescue = %v, %v; want nothing", ids(more), err)
	}
	refetched, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 10, WorkerID: "w3"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if got := ids(refetched); len(got) != 2 || !slices.Contains(got, retry) || !slices.Contains(got, stranger) {
		t.Errorf("JobFetch after rescue = %v, want %d and %d", got, retry, stranger)
	}
	// A worker that holds both the lost first attempt and the second one of
	// the same job (it claimed the job again) learns that the first is lost,
	// and keeps the second.
	second2 := storage.JobAttempt{ID: retry, Attempt: 2}
	if lost, want := heartbeat(ctx, t, drv, attempt1(retry), second2), []storage.JobStatus{{JobAttempt: attempt1(retry), State: acidic.JobRunning, CurrentAttempt: 2}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat(attempts 1 and 2 of a job at attempt 2) = %v, want %v", lost, want)
	}
	// An operator cancels the job w1 still works on: its heartbeat says so.
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: beating}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if lost, want := heartbeat(ctx, t, drv, attempt1(beating)), []storage.JobStatus{{JobAttempt: attempt1(beating), State: acidic.JobCancelled, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat of a cancelled job = %v, want %v", lost, want)
	}
	// The old attempt can no longer complete.
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: retry, Attempt: 1}}}); err != nil || len(done) != 0 {
		t.Errorf("JobComplete of a rescued attempt = %v, %v; want nothing", done, err)
	}
}

func TestJobPrune(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})

	const n = 8
	in := make([]storage.JobInsert, n)
	for i := range in {
		in[i] = job("q")
	}
	jobs := insertJobs(ctx, t, drv, in...)
	id := func(i int) int64 { return jobs[i].ID }
	// 0..4 running.
	if got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 5, WorkerID: "w"}); err != nil || len(got) != 5 {
		t.Fatalf("JobFetch = %v, %v", ids(got), err)
	}
	// 0, 1: completed. 2: discarded. 3: retryable. 4: running. 5: cancelled.
	// 6, 7: available.
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: id(0), Attempt: 1}, {ID: id(1), Attempt: 1}}}); err != nil || len(done) != 2 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	for i, s := range map[int]acidic.JobState{2: acidic.JobDiscarded, 3: acidic.JobRetryable} {
		if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: id(i), Attempt: 1}, State: s, ScheduledAt: time.Now()}); err != nil || !ok {
			t.Fatalf("JobFinish(%s) = %v, %v", s, ok, err)
		}
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: id(5)}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	// Old: 0 (completed), 2 (discarded), 5 (cancelled). 1 stays recent.
	exec(ctx, t, drv, `UPDATE {schema}.jobs SET finalized_at = now() - interval '2 hours' WHERE id = ANY($1)`, []int64{id(0), id(2), id(5)})
	// Old rows that never finished are not pruned, whatever their age.
	exec(ctx, t, drv, `UPDATE {schema}.jobs SET created_at = now() - interval '2 days', scheduled_at = now() - interval '2 days' WHERE id = ANY($1)`,
		[]int64{id(3), id(4), id(6)})

	pruned, err := drv.JobPrune(ctx, storage.JobPruneParams{Retention: time.Hour, Limit: 2})
	if err != nil {
		t.Fatalf("JobPrune: %v", err)
	}
	if pruned != 2 {
		t.Errorf("JobPrune(limit 2) = %d, want 2", pruned)
	}
	pruned, err = drv.JobPrune(ctx, storage.JobPruneParams{Retention: time.Hour, Limit: 100})
	if err != nil {
		t.Fatalf("JobPrune: %v", err)
	}
	if pruned != 1 {
		t.Errorf("second JobPrune = %d, want 1", pruned)
	}
	left := ids(listJobs(ctx, t, drv, acidic.JobFilter{}))
	if want := []int64{id(1), id(3), id(4), id(6), id(7)}; !slices.Equal(left, want) {
		t.Errorf("jobs left after pruning = %v, want %v", left, want)
	}
	// A shorter retention reaches the recent completed job.
	if pruned, err := drv.JobPrune(ctx, storage.JobPruneParams{Retention: 0, Limit: 100}); err != nil || pruned != 1 {
		t.Errorf("JobPrune(retention 0) = %d, %v; want 1", pruned, err)
	}
}

// TestBookkeepingUsesGenericPlans: a bookkeeping statement is planned once
// per connection, not at every call. Left to itself, PostgreSQL re-plans
// JobComplete at every call (its custom plan, which sees the batch's size,
// always looks cheaper than the generic one), which cost more than the
// statement's own work.
func TestBookkeepingUsesGenericPlans(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 1})
	ins := make([]storage.JobInsert, 40)
	for i := range ins {
		ins[i] = job("q")
	}
	insertJobs(ctx, t, drv, ins...)
	for batch := 1; batch <= 8; batch++ {
		jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: batch, WorkerID: "w"})
		if err != nil || len(jobs) != batch {
			t.Fatalf("JobFetch(%d) = %d jobs, %v", batch, len(jobs), err)
		}
		attempts := make([]storage.JobAttempt, len(jobs))
		for i, j := range jobs {
			attempts[i] = storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}
		}
		if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: attempts}); err != nil || len(done) != batch {
			t.Fatalf("JobComplete(%d) = %v, %v", batch, done, err)
		}
	}
	rows, err := drv.Pool().Query(ctx, `SELECT left(statement, 60), generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE 'WITH picked AS%' OR statement LIKE 'WITH done AS%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var stmt string
		var generic, custom int64
		if err := rows.Scan(&stmt, &generic, &custom); err != nil {
			t.Fatal(err)
		}
		seen++
		if custom != 0 || generic != 8 {
			t.Errorf("statement %q: %d generic and %d custom plans, want 8 generic", stmt, generic, custom)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Errorf("found %d prepared job statements, want 2 (JobFetch and JobComplete)", seen)
	}
}
