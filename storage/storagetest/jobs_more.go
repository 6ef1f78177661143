package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// staleAfter is the StaleAfter of the rescues in the suite. A test makes a
// heartbeat stale by waiting a little longer (ageHeartbeats): the suite
// cannot move a store's clock.
const staleAfter = time.Second

// ageHeartbeats waits until the heartbeats of the running attempts are
// older than staleAfter, then refreshes those of keep, so that a rescue
// takes every running attempt but those.
func ageHeartbeats(ctx context.Context, t *testing.T, drv storage.Driver, keep ...storage.JobAttempt) {
	t.Helper()
	time.Sleep(staleAfter + 300*time.Millisecond)
	if len(keep) > 0 {
		if lost := heartbeat(ctx, t, drv, keep...); len(lost) != 0 {
			t.Fatalf("set-up: JobHeartbeat(%v) lost %v", keep, lost)
		}
	}
}

// rescue runs JobRescue with staleAfter and returns the rescued ids, sorted.
func rescue(ctx context.Context, t *testing.T, drv storage.Driver, p storage.JobRescueParams) []int64 {
	t.Helper()
	p.StaleAfter = staleAfter
	if p.Limit == 0 {
		p.Limit = 100
	}
	jobs, err := drv.JobRescue(ctx, p)
	if err != nil {
		t.Fatalf("JobRescue(%+v): %v", p, err)
	}
	got := ids(jobs)
	slices.Sort(got)
	return got
}

func uniqueJob(q, key string) storage.JobInsert {
	j := job(q)
	j.UniqueKey = []byte(key)
	j.UniqueStates = acidic.NewJobStates(acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable)
	return j
}

func insertUnique(ctx context.Context, t *testing.T, e storage.Executor, j storage.JobInsert, r storage.JobReplace) *acidic.Job {
	t.Helper()
	got, err := e.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: j, Replace: r})
	if err != nil {
		t.Fatalf("JobInsertUnique(%s): %v", j.UniqueKey, err)
	}
	return got
}

// testJobInsertUnique: a unique job is inserted once while a job with its
// key is in a state its mask covers; a duplicate is reported with the
// existing job, whose fields are replaced as asked only while it waits.
func testJobInsertUnique(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	first := insertUnique(ctx, t, drv, uniqueJob("q", "k"), storage.JobReplace{})
	if first.Duplicate || first.State != acidic.JobAvailable || string(first.UniqueKey) != "k" {
		t.Fatalf("first JobInsertUnique = %+v, want a new available job with key k", first)
	}

	// A duplicate that replaces nothing changes nothing.
	dup := uniqueJob("q", "k")
	dup.Args, dup.Priority, dup.MaxAttempts = json.RawMessage(`{"v":2}`), 2, 9
	got := insertUnique(ctx, t, drv, dup, storage.JobReplace{})
	if !got.Duplicate || got.ID != first.ID || !jsonEqual(t, got.Args, first.Args) || got.Priority != first.Priority || got.MaxAttempts != first.MaxAttempts {
		t.Errorf("duplicate without replace = %+v, want job %d unchanged, marked duplicate", got, first.ID)
	}

	// A duplicate that replaces fields of a waiting job.
	later := time.Now().Add(time.Hour).Truncate(time.Microsecond)
	dup.ScheduledAt = later
	got = insertUnique(ctx, t, drv, dup, storage.JobReplace{Args: true, Priority: true, MaxAttempts: true, ScheduledAt: true})
	if !got.Duplicate || got.ID != first.ID || !jsonEqual(t, got.Args, dup.Args) || got.Priority != 2 || got.MaxAttempts != 9 || !got.ScheduledAt.Equal(later) {
		t.Errorf("duplicate with replace = %+v, want job %d with args, priority, attempts and schedule replaced", got, first.ID)
	}
	stored := getJob(ctx, t, drv, first.ID)
	if !jsonEqual(t, stored.Args, dup.Args) || stored.Priority != 2 || stored.MaxAttempts != 9 || !stored.ScheduledAt.Equal(later) || stored.Duplicate {
		t.Errorf("stored job after replace = %+v", stored)
	}
	if n := len(listJobs(ctx, t, drv, acidic.JobFilter{})); n != 1 {
		t.Fatalf("%d jobs after duplicates, want 1", n)
	}

	// Once it runs, it is no longer replaced.
	dup.ScheduledAt = time.Time{}
	insertUnique(ctx, t, drv, dup, storage.JobReplace{ScheduledAt: true}) // due now
	running := fetchOne(ctx, t, drv, "q", "w")
	if running.ID != first.ID {
		t.Fatalf("fetched %d, want %d", running.ID, first.ID)
	}
	late := uniqueJob("q", "k")
	late.Args, late.Priority = json.RawMessage(`{"v":3}`), 3
	got = insertUnique(ctx, t, drv, late, storage.JobReplace{Args: true, Priority: true})
	if !got.Duplicate || got.ID != first.ID || got.State != acidic.JobRunning || !jsonEqual(t, got.Args, dup.Args) || got.Priority != 2 {
		t.Errorf("duplicate of a running job = %+v, want it running and unchanged", got)
	}

	// A job in a state outside its mask blocks nobody.
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(first.ID)}}); err != nil || len(done) != 1 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	again := insertUnique(ctx, t, drv, uniqueJob("q", "k"), storage.JobReplace{})
	if again.Duplicate || again.ID == first.ID {
		t.Errorf("insert after the first job completed = %+v, want a new job", again)
	}
	// Neither does another key.
	if other := insertUnique(ctx, t, drv, uniqueJob("q", "other"), storage.JobReplace{}); other.Duplicate {
		t.Errorf("another key reported a duplicate: %+v", other)
	}
	// A mask that covers completed jobs makes a completed job block.
	done := uniqueJob("once", "once")
	done.UniqueStates |= acidic.NewJobStates(acidic.JobCompleted)
	once := insertUnique(ctx, t, drv, done, storage.JobReplace{})
	if claimed := fetchOne(ctx, t, drv, "once", "w"); claimed.ID != once.ID {
		t.Fatalf("fetched %d, want %d", claimed.ID, once.ID)
	}
	if ids, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(once.ID)}}); err != nil || len(ids) != 1 {
		t.Fatalf("JobComplete = %v, %v", ids, err)
	}
	if got := insertUnique(ctx, t, drv, done, storage.JobReplace{}); !got.Duplicate || got.ID != once.ID || got.State != acidic.JobCompleted {
		t.Errorf("insert over a completed job its mask covers = %+v, want that job, duplicate", got)
	}
	if n := len(listJobs(ctx, t, drv, acidic.JobFilter{})); n != 4 {
		t.Errorf("%d jobs, want 4", n)
	}
}

// testJobInsertUniqueConcurrent: concurrent enqueues of one key make
// exactly one job.
func testJobInsertUniqueConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	const n = 10
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		jobs  = make([]*acidic.Job, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := uniqueJob("q", "contended")
			j.Args = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
			<-start
			jobs[i], errs[i] = drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: j, Replace: storage.JobReplace{Args: true}})
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("JobInsertUnique #%d: %v", i, errs[i])
		}
		if !jobs[i].Duplicate {
			created++
		}
		if jobs[i].ID != jobs[0].ID {
			t.Errorf("JobInsertUnique #%d returned job %d, want %d", i, jobs[i].ID, jobs[0].ID)
		}
	}
	if created != 1 {
		t.Errorf("%d enqueues report inserting, want 1", created)
	}
	if got := listJobs(ctx, t, drv, acidic.JobFilter{}); len(got) != 1 {
		t.Errorf("%d jobs after concurrent unique inserts, want 1", len(got))
	}
}

// testJobFetchSkipRunJobs: a fetch with SkipRunJobs leaves jobs that carry
// runs to other clients.
func testJobFetchSkipRunJobs(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")
	withRun := job("q")
	withRun.RunID, withRun.Kind = r.ID, r.Workflow
	jobs := insertJobs(ctx, t, drv, withRun, job("q"))
	got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 10, WorkerID: "w", SkipRunJobs: true})
	if err != nil || !slices.Equal(ids(got), []int64{jobs[1].ID}) {
		t.Fatalf("JobFetch(SkipRunJobs) = %v, %v; want only the plain job %d", ids(got), err, jobs[1].ID)
	}
	got, err = drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 10, WorkerID: "w"})
	if err != nil || !slices.Equal(ids(got), []int64{jobs[0].ID}) {
		t.Fatalf("JobFetch = %v, %v; want the run's job %d", ids(got), err, jobs[0].ID)
	}
}

// testJobHeartbeatAndRescue: a heartbeat keeps the running attempt it names
// (and no other) from being rescued and reports the attempts that are no
// longer running; a rescue takes stale attempts only, at most Limit,
// discards a job on its last attempt and fences the rescued attempt out.
func testJobHeartbeatAndRescue(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	last := job("q")
	last.MaxAttempts = 1
	jobs := insertJobs(ctx, t, drv, job("q"), last, job("q"), job("q"))
	claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 4, WorkerID: "w1"})
	if err != nil || len(claimed) != 4 {
		t.Fatalf("JobFetch = %v, %v; want 4 jobs", ids(claimed), err)
	}
	retry, discard, beating, stranger := jobs[0].ID, jobs[1].ID, jobs[2].ID, jobs[3].ID

	// Nothing is stale yet.
	if got := rescue(ctx, t, drv, storage.JobRescueParams{}); len(got) != 0 {
		t.Fatalf("JobRescue of fresh attempts = %v, want nothing", got)
	}
	ageHeartbeats(ctx, t, drv, attempt1(beating))
	// A heartbeat for an attempt of "stranger" that is not the running one
	// reports it lost and does not keep the running one.
	wrong := storage.JobAttempt{ID: stranger, Attempt: 2}
	if lost, want := heartbeat(ctx, t, drv, wrong), []storage.JobStatus{{JobAttempt: wrong, State: acidic.JobRunning, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat(an attempt not running) = %v, want %v", lost, want)
	}
	if lost := heartbeat(ctx, t, drv); len(lost) != 0 {
		t.Errorf("JobHeartbeat(nothing) = %v, want nothing", lost)
	}

	first, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: staleAfter, Limit: 1})
	if err != nil || len(first) != 1 {
		t.Fatalf("JobRescue(limit 1) = %v, %v; want 1 job", ids(first), err)
	}
	second, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: staleAfter, Limit: 10})
	if err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	rescued := append(first, second...)
	got := ids(rescued)
	slices.Sort(got)
	if want := []int64{retry, discard, stranger}; !slices.Equal(got, want) {
		t.Fatalf("rescued %v, want %v (not the heartbeated %d)", got, want, beating)
	}
	for _, j := range rescued {
		want := acidic.JobRetryable
		if j.ID == discard {
			want = acidic.JobDiscarded
		}
		if j.State != want || (j.FinalizedAt != nil) != (want == acidic.JobDiscarded) {
			t.Errorf("rescued job %d is %s finalized %v, want %s", j.ID, j.State, j.FinalizedAt, want)
		}
		if len(j.Errors) != 1 || j.Errors[0].Attempt != 1 || !strings.Contains(j.Errors[0].Error, "rescued") || !strings.Contains(j.Errors[0].Error, "w1") {
			t.Errorf("rescued job %d errors = %+v, want one 'rescued' entry for attempt 1 by w1", j.ID, j.Errors)
		}
		if stored := getJob(ctx, t, drv, j.ID); stored.State != j.State || len(stored.Errors) != 1 {
			t.Errorf("JobGet(%d) = %s with %d errors, want what JobRescue returned", j.ID, stored.State, len(stored.Errors))
		}
	}
	if j := getJob(ctx, t, drv, beating); j.State != acidic.JobRunning || len(j.Errors) != 0 {
		t.Errorf("heartbeating job is %s with errors %v, want running, none", j.State, j.Errors)
	}
	wantLost := []storage.JobStatus{{JobAttempt: attempt1(retry), State: acidic.JobRetryable, CurrentAttempt: 1}, {JobAttempt: attempt1(discard), State: acidic.JobDiscarded, CurrentAttempt: 1}}
	if lost := heartbeat(ctx, t, drv, attempt1(retry), attempt1(discard), attempt1(beating)); !slices.Equal(lost, wantLost) {
		t.Errorf("JobHeartbeat after rescue = %v, want %v", lost, wantLost)
	}
	refetched, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 10, WorkerID: "w3"})
	if got := ids(refetched); err != nil || len(got) != 2 || !slices.Contains(got, retry) || !slices.Contains(got, stranger) {
		t.Errorf("JobFetch after rescue = %v, %v; want %d and %d", got, err, retry, stranger)
	}
	second2 := storage.JobAttempt{ID: retry, Attempt: 2}
	if lost, want := heartbeat(ctx, t, drv, attempt1(retry), second2), []storage.JobStatus{{JobAttempt: attempt1(retry), State: acidic.JobRunning, CurrentAttempt: 2}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat(attempts 1 and 2 of a job at attempt 2) = %v, want %v", lost, want)
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: beating}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if lost, want := heartbeat(ctx, t, drv, attempt1(beating)), []storage.JobStatus{{JobAttempt: attempt1(beating), State: acidic.JobCancelled, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat of a cancelled job = %v, want %v", lost, want)
	}
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(retry)}}); err != nil || len(done) != 0 {
		t.Errorf("JobComplete of a rescued attempt = %v, %v; want nothing", done, err)
	}
}

// testJobLostAttempts: JobLostAttempts reports what JobHeartbeat would and
// writes nothing: the heartbeats it is asked about stay stale.
func testJobLostAttempts(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"))
	if claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 2, WorkerID: "w"}); err != nil || len(claimed) != 2 {
		t.Fatalf("JobFetch = %v, %v; want 2 jobs", ids(claimed), err)
	}
	running, cancelled := jobs[0].ID, jobs[1].ID
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: cancelled}); err != nil {
		t.Fatal(err)
	}
	ageHeartbeats(ctx, t, drv)
	stale := storage.JobAttempt{ID: running, Attempt: 2}
	lost, err := drv.JobLostAttempts(ctx, storage.JobLostAttemptsParams{Attempts: []storage.JobAttempt{attempt1(running), attempt1(cancelled), stale}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lost, func(a, b storage.JobStatus) int { return int(a.ID-b.ID)*10 + a.Attempt - b.Attempt })
	want := []storage.JobStatus{
		{JobAttempt: stale, State: acidic.JobRunning, CurrentAttempt: 1},
		{JobAttempt: attempt1(cancelled), State: acidic.JobCancelled, CurrentAttempt: 1},
	}
	if !slices.Equal(lost, want) {
		t.Errorf("JobLostAttempts = %v, want %v", lost, want)
	}
	if got := rescue(ctx, t, drv, storage.JobRescueParams{}); !slices.Equal(got, []int64{running}) {
		t.Errorf("JobRescue after JobLostAttempts = %v, want [%d]: JobLostAttempts must not refresh a heartbeat", got, running)
	}
	if lost, err := drv.JobLostAttempts(ctx, storage.JobLostAttemptsParams{Attempts: nil}); err != nil || len(lost) != 0 {
		t.Errorf("JobLostAttempts(nothing) = %v, %v", lost, err)
	}
}

// testJobRescueSkipRunJobs: a rescue with SkipRunJobs leaves the attempts
// of run jobs alone; a rescue of such an attempt frees the run lease it
// held.
func testJobRescueSkipRunJobs(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := insertRun(ctx, t, drv, "k")
	withRun := job("q")
	withRun.RunID, withRun.Kind = r.ID, r.Workflow
	jobs := insertJobs(ctx, t, drv, withRun, job("q"))
	claimed, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 2, WorkerID: "w"})
	if err != nil || len(claimed) != 2 {
		t.Fatalf("JobFetch = %v, %v", ids(claimed), err)
	}
	if held := getRun(ctx, t, drv, r.ID); held.LockedBy == "" {
		t.Fatalf("set-up: the fetch did not lease the run: %+v", held)
	}
	ageHeartbeats(ctx, t, drv)
	if got := rescue(ctx, t, drv, storage.JobRescueParams{SkipRunJobs: true}); !slices.Equal(got, []int64{jobs[1].ID}) {
		t.Errorf("JobRescue(SkipRunJobs) = %v, want only the plain job %d", got, jobs[1].ID)
	}
	if held := getRun(ctx, t, drv, r.ID); held.LockedBy == "" {
		t.Errorf("JobRescue(SkipRunJobs) freed the run's lease")
	}
	if got := rescue(ctx, t, drv, storage.JobRescueParams{}); !slices.Equal(got, []int64{jobs[0].ID}) {
		t.Errorf("JobRescue = %v, want the run's job %d", got, jobs[0].ID)
	}
	if freed := getRun(ctx, t, drv, r.ID); freed.LockedBy != "" || freed.LockedAt != nil {
		t.Errorf("after the rescue the run is still leased: %q at %v", freed.LockedBy, freed.LockedAt)
	}
}

// testJobPrune: a prune deletes finished jobs finalized longer than
// retention ago, at most limit of them, and never an unfinished job.
func testJobPrune(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	const n = 8
	in := make([]storage.JobInsert, n)
	for i := range in {
		in[i] = job("q")
	}
	jobs := insertJobs(ctx, t, drv, in...)
	id := func(i int) int64 { return jobs[i].ID }
	if got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 5, WorkerID: "w"}); err != nil || len(got) != 5 {
		t.Fatalf("JobFetch = %v, %v", ids(got), err)
	}
	// 0, 1: completed. 2: discarded. 3: retryable. 4: running. 5: cancelled.
	// 6, 7: available.
	if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(id(0)), attempt1(id(1))}}); err != nil || len(done) != 2 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	for i, s := range map[int]acidic.JobState{2: acidic.JobDiscarded, 3: acidic.JobRetryable} {
		if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(id(i)), State: s, ScheduledAt: time.Now()}); err != nil || !ok {
			t.Fatalf("JobFinish(%s) = %v, %v", s, ok, err)
		}
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: id(5)}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if pruned, err := drv.JobPrune(ctx, storage.JobPruneParams{Retention: time.Hour, Limit: 100}); err != nil || pruned != 0 {
		t.Errorf("JobPrune(retention 1h) = %d, %v; want 0 (all finished just now)", pruned, err)
	}
	pruned, err := drv.JobPrune(ctx, storage.JobPruneParams{Retention: 0, Limit: 2})
	if err != nil || pruned != 2 {
		t.Errorf("JobPrune(limit 2) = %d, %v; want 2", pruned, err)
	}
	pruned, err = drv.JobPrune(ctx, storage.JobPruneParams{Retention: 0, Limit: 100})
	if err != nil || pruned != 2 {
		t.Errorf("second JobPrune = %d, %v; want 2", pruned, err)
	}
	left := ids(listJobs(ctx, t, drv, acidic.JobFilter{}))
	if want := []int64{id(3), id(4), id(6), id(7)}; !slices.Equal(left, want) {
		t.Errorf("jobs left after pruning = %v, want %v (the unfinished ones)", left, want)
	}
}
