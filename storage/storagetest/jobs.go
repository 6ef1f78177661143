package storagetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func testJobInsertMany(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	before := time.Now()
	future := before.Add(time.Hour).Truncate(time.Microsecond)
	past := before.Add(-time.Hour).Truncate(time.Microsecond)
	in := []storage.JobInsert{
		{Queue: "qa", Kind: "k1", Args: json.RawMessage(`{"n":1}`), State: acidic.JobAvailable, Priority: 2, MaxAttempts: 5},
		{Queue: "qb", Kind: "k2", Args: json.RawMessage(`{"n":2}`), State: acidic.JobAvailable, MaxAttempts: 1, ScheduledAt: future},
		{Queue: "qa", Kind: "k3", Args: json.RawMessage(`[1,2]`), State: acidic.JobPending, MaxAttempts: 3},
		{Queue: "qa", Kind: "k4", Args: json.RawMessage(`{}`), State: acidic.JobScheduled, Priority: 3, MaxAttempts: 2, ScheduledAt: past,
			Meta: json.RawMessage(`{"m":"v"}`), UniqueKey: []byte("uk"), UniqueStates: acidic.NewJobStates(acidic.JobAvailable, acidic.JobPending)},
		{Queue: "qa", Kind: "k5", Args: json.RawMessage(`{}`), State: acidic.JobPending, MaxAttempts: 3, ScheduledAt: future},
	}
	out := insertJobs(ctx, t, drv, in...)
	after := time.Now()

	wantState := []acidic.JobState{acidic.JobAvailable, acidic.JobScheduled, acidic.JobPending, acidic.JobAvailable, acidic.JobPending}
	for i, j := range out {
		if i > 0 && j.ID <= out[i-1].ID {
			t.Errorf("job %d has id %d, not above the previous %d", i, j.ID, out[i-1].ID)
		}
		if j.Kind != in[i].Kind || j.Queue != in[i].Queue {
			t.Errorf("job %d is %s/%s, want %s/%s (order not kept)", i, j.Queue, j.Kind, in[i].Queue, in[i].Kind)
		}
		if j.State != wantState[i] {
			t.Errorf("job %d (%s) state = %s, want %s", i, j.Kind, j.State, wantState[i])
		}
		if !jsonEqual(t, j.Args, in[i].Args) {
			t.Errorf("job %d args = %s, want %s", i, j.Args, in[i].Args)
		}
		if j.Priority != in[i].Priority || j.MaxAttempts != in[i].MaxAttempts {
			t.Errorf("job %d priority/max attempts = %d/%d, want %d/%d", i, j.Priority, j.MaxAttempts, in[i].Priority, in[i].MaxAttempts)
		}
		if j.Attempt != 0 || j.AttemptedAt != nil || j.AttemptedBy != "" || j.FinalizedAt != nil || len(j.Errors) != 0 {
			t.Errorf("job %d is not fresh: attempt %d, attempted at %v by %q, finalized %v, errors %v",
				i, j.Attempt, j.AttemptedAt, j.AttemptedBy, j.FinalizedAt, j.Errors)
		}
		if j.RunID != uuid.Nil {
			t.Errorf("job %d run id = %s, want nil", i, j.RunID)
		}
		if !near(j.CreatedAt, before, time.Minute) {
			t.Errorf("job %d created at %v, not near %v", i, j.CreatedAt, before)
		}
		if got := getJob(ctx, t, drv, j.ID); !reflect.DeepEqual(got, j) {
			t.Errorf("JobGet(%d) = %+v, want what JobInsertMany returned: %+v", j.ID, got, j)
		}
	}
	// Defaults: zero ScheduledAt is the database's now; empty meta is {}.
	for _, i := range []int{0, 2} {
		if s := out[i].ScheduledAt; s.Before(before.Add(-2*time.Second)) || s.After(after.Add(2*time.Second)) {
			t.Errorf("job %d scheduled at %v, want about now (%v..%v)", i, s, before, after)
		}
	}
	if !out[1].ScheduledAt.Equal(future) || !out[4].ScheduledAt.Equal(future) {
		t.Errorf("future jobs scheduled at %v and %v, want %v", out[1].ScheduledAt, out[4].ScheduledAt, future)
	}
	if !out[3].ScheduledAt.Equal(past) {
		t.Errorf("past job scheduled at %v, want %v", out[3].ScheduledAt, past)
	}
	if !jsonEqual(t, out[0].Meta, []byte(`{}`)) {
		t.Errorf("default meta = %s, want {}", out[0].Meta)
	}
	if !jsonEqual(t, out[3].Meta, in[3].Meta) {
		t.Errorf("meta = %s, want %s", out[3].Meta, in[3].Meta)
	}
	if !bytes.Equal(out[3].UniqueKey, []byte("uk")) || out[3].UniqueStates != in[3].UniqueStates {
		t.Errorf("unique key/states = %q/%d, want %q/%d", out[3].UniqueKey, out[3].UniqueStates, "uk", in[3].UniqueStates)
	}
	if out[0].UniqueKey != nil || out[0].UniqueStates != 0 {
		t.Errorf("job without unique key has key %q states %d", out[0].UniqueKey, out[0].UniqueStates)
	}

	// A duplicate in a state the mask covers is refused; nothing is inserted.
	dup := in[3]
	if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("qa"), dup}}); err == nil {
		t.Error("JobInsertMany of a duplicate unique job succeeded, want a unique violation")
	}
	if got := listJobs(ctx, t, drv, acidic.JobFilter{}); len(got) != len(in) {
		t.Errorf("after the failed batch there are %d jobs, want %d (batch must be atomic)", len(got), len(in))
	}

	// Nothing to insert.
	if got, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: nil}); err != nil || len(got) != 0 {
		t.Errorf("JobInsertMany(nil) = %v, %v; want no jobs and no error", got, err)
	}
}

func testJobInsertManyWithRun(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	run := insertRun(ctx, t, drv, "key")
	in := job("q")
	in.RunID = run.ID
	j := insertJobs(ctx, t, drv, in)[0]
	if j.RunID != run.ID {
		t.Errorf("job run id = %s, want %s", j.RunID, run.ID)
	}
	if got := listJobs(ctx, t, drv, acidic.JobFilter{RunID: run.ID}); len(got) != 1 || got[0].ID != j.ID {
		t.Errorf("JobList by run id = %v, want [%d]", ids(got), j.ID)
	}
}

func testJobFetchOrder(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	now := time.Now()
	at := func(q string, priority int, ago time.Duration) storage.JobInsert {
		j := job(q)
		j.Priority = priority
		j.ScheduledAt = now.Add(-ago)
		return j
	}
	jobs := insertJobs(ctx, t, drv,
		at("q", 2, 3*time.Minute),  // 0
		at("q", 0, 1*time.Minute),  // 1
		at("q", 0, 2*time.Minute),  // 2
		at("q", 1, 5*time.Minute),  // 3
		at("q", 0, 2*time.Minute),  // 4: same as 2, later id
		at("q", 0, -time.Hour),     // 5: future
		at("other", 0, time.Hour),  // 6: other queue
		at("q", 3, 10*time.Minute), // 7
	)
	pending := at("q", 0, time.Hour)
	pending.State = acidic.JobPending
	pendingJob := insertJobs(ctx, t, drv, pending)[0]

	want := []int64{jobs[2].ID, jobs[4].ID, jobs[1].ID, jobs[3].ID, jobs[0].ID, jobs[7].ID}

	before := time.Now()
	first, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 3, WorkerID: "w1"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if !slices.Equal(ids(first), want[:3]) {
		t.Fatalf("first JobFetch(Max 3) = %v, want %v", ids(first), want[:3])
	}
	rest, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 100, WorkerID: "w2"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if !slices.Equal(ids(rest), want[3:]) {
		t.Fatalf("second JobFetch = %v, want %v", ids(rest), want[3:])
	}
	for i, j := range append(first, rest...) {
		worker := "w1"
		if i >= 3 {
			worker = "w2"
		}
		if j.State != acidic.JobRunning || j.Attempt != 1 || j.AttemptedBy != worker || j.AttemptedAt == nil || !near(*j.AttemptedAt, before, time.Minute) {
			t.Errorf("fetched job %d: state %s attempt %d by %q at %v; want running, 1, %q, now",
				j.ID, j.State, j.Attempt, j.AttemptedBy, j.AttemptedAt, worker)
		}
		if got := getJob(ctx, t, drv, j.ID); got.State != acidic.JobRunning || got.Attempt != 1 {
			t.Errorf("stored job %d: state %s attempt %d, want running 1", j.ID, got.State, got.Attempt)
		}
	}
	// Nothing left that is due: not the future job, the pending one or the other queue's.
	if more, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 100, WorkerID: "w3"}); err != nil || len(more) != 0 {
		t.Errorf("third JobFetch = %v, %v; want nothing", ids(more), err)
	}
	for _, id := range []int64{jobs[5].ID, pendingJob.ID, jobs[6].ID} {
		if j := getJob(ctx, t, drv, id); j.State == acidic.JobRunning || j.Attempt != 0 {
			t.Errorf("job %d was claimed: state %s attempt %d", id, j.State, j.Attempt)
		}
	}
	// Max 0 claims nothing.
	if got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "other", Max: 0, WorkerID: "w"}); err != nil || len(got) != 0 {
		t.Errorf("JobFetch(Max 0) = %v, %v; want nothing", ids(got), err)
	}
}

func testJobFetchRetryable(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	insertJobs(ctx, t, drv, job("q"), job("q"))
	a := fetchOne(ctx, t, drv, "q", "w")
	b := fetchOne(ctx, t, drv, "q", "w")
	// a is due again already; b in an hour.
	for _, o := range []storage.JobFinishParams{
		{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 1}, State: acidic.JobRetryable, ScheduledAt: time.Now().Add(-time.Second)},
		{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: acidic.JobRetryable, ScheduledAt: time.Now().Add(time.Hour)},
	} {
		if ok, err := drv.JobFinish(ctx, o); err != nil || !ok {
			t.Fatalf("JobFinish(%+v) = %v, %v; want true", o, ok, err)
		}
	}
	got, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 10, WorkerID: "w2"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("JobFetch = %v, want [%d] (the due retryable job only)", ids(got), a.ID)
	}
	if got[0].Attempt != 2 || got[0].AttemptedBy != "w2" || got[0].State != acidic.JobRunning {
		t.Errorf("refetched job: attempt %d by %q state %s; want 2, w2, running", got[0].Attempt, got[0].AttemptedBy, got[0].State)
	}
}

func testJobFetchConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	const total, workers = 500, 8
	in := make([]storage.JobInsert, total)
	for i := range in {
		in[i] = job("q")
	}
	insertJobs(ctx, t, drv, in...)

	var (
		mu      sync.Mutex
		claimed = map[int64]string{}
		dups    []string
		wg      sync.WaitGroup
		start   = make(chan struct{})
		errs    = make(chan error, workers)
	)
	for w := range workers {
		worker := fmt.Sprintf("w%d", w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for {
				jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "q", Max: 7, WorkerID: worker})
				if err != nil {
					errs <- err
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					if prev, ok := claimed[j.ID]; ok {
						dups = append(dups, fmt.Sprintf("job %d claimed by %s and %s", j.ID, prev, worker))
					}
					claimed[j.ID] = worker
					if j.AttemptedBy != worker || j.Attempt != 1 {
						dups = append(dups, fmt.Sprintf("job %d fetched by %s shows attempt %d by %s", j.ID, worker, j.Attempt, j.AttemptedBy))
					}
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("JobFetch: %v", err)
	}
	for _, d := range dups {
		t.Error(d)
	}
	if len(claimed) != total {
		t.Errorf("%d distinct jobs claimed, want %d", len(claimed), total)
	}
	running := listJobs(ctx, t, drv, acidic.JobFilter{States: []acidic.JobState{acidic.JobRunning}})
	if len(running) != total {
		t.Errorf("%d jobs running, want %d", len(running), total)
	}
	for _, j := range running {
		if j.Attempt != 1 || claimed[j.ID] != j.AttemptedBy {
			t.Errorf("job %d: attempt %d by %q, but claimed by %q", j.ID, j.Attempt, j.AttemptedBy, claimed[j.ID])
		}
	}
}

func testJobComplete(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"), job("idle"))
	a := fetchOne(ctx, t, drv, "q", "w")
	b := fetchOne(ctx, t, drv, "q", "w")
	idle := jobs[2]

	complete := func(attempts ...storage.JobAttempt) []int64 {
		t.Helper()
		done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: attempts})
		if err != nil {
			t.Fatalf("JobComplete(%v): %v", attempts, err)
		}
		return done
	}

	// Wrong attempt, or a job that is not running: nothing changes.
	if done := complete(storage.JobAttempt{ID: a.ID, Attempt: 2}, storage.JobAttempt{ID: a.ID, Attempt: 0},
		storage.JobAttempt{ID: idle.ID, Attempt: 0}, storage.JobAttempt{ID: 1 << 40, Attempt: 1}); len(done) != 0 {
		t.Errorf("fenced JobComplete returned %v, want nothing", done)
	}
	if j := getJob(ctx, t, drv, a.ID); j.State != acidic.JobRunning || j.FinalizedAt != nil {
		t.Errorf("after a wrong-attempt complete, job is %s finalized %v; want running, nil", j.State, j.FinalizedAt)
	}
	if j := getJob(ctx, t, drv, idle.ID); j.State != acidic.JobAvailable || j.FinalizedAt != nil {
		t.Errorf("after completing an available job, it is %s finalized %v; want available, nil", j.State, j.FinalizedAt)
	}

	// A batch: a right, b wrong.
	before := time.Now()
	done := complete(storage.JobAttempt{ID: a.ID, Attempt: 1}, storage.JobAttempt{ID: b.ID, Attempt: 7})
	if !slices.Equal(done, []int64{a.ID}) {
		t.Fatalf("JobComplete = %v, want [%d]", done, a.ID)
	}
	ja := getJob(ctx, t, drv, a.ID)
	if ja.State != acidic.JobCompleted || ja.FinalizedAt == nil || !near(*ja.FinalizedAt, before, time.Minute) {
		t.Errorf("completed job is %s finalized %v; want completed, now", ja.State, ja.FinalizedAt)
	}
	if jb := getJob(ctx, t, drv, b.ID); jb.State != acidic.JobRunning {
		t.Errorf("job completed with the wrong attempt is %s, want running", jb.State)
	}

	// Completing again: no longer running.
	if done := complete(storage.JobAttempt{ID: a.ID, Attempt: 1}); len(done) != 0 {
		t.Errorf("second JobComplete returned %v, want nothing", done)
	}
	if again := getJob(ctx, t, drv, a.ID); !again.FinalizedAt.Equal(*ja.FinalizedAt) {
		t.Errorf("second complete moved finalized_at from %v to %v", ja.FinalizedAt, again.FinalizedAt)
	}

	// A cancelled attempt cannot be completed either.
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: b.ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if done := complete(storage.JobAttempt{ID: b.ID, Attempt: 1}); len(done) != 0 {
		t.Errorf("JobComplete of a cancelled job returned %v, want nothing", done)
	}
	if jb := getJob(ctx, t, drv, b.ID); jb.State != acidic.JobCancelled {
		t.Errorf("cancelled job is %s after JobComplete, want cancelled", jb.State)
	}
}

func testJobFinish(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()

	t.Run("retryable appends errors", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		j := insertJobs(ctx, t, drv, job("q"))[0]
		var wantErrs []acidic.AttemptError
		for attempt := 1; attempt <= 2; attempt++ {
			got := fetchOne(ctx, t, drv, "q", "w")
			if got.ID != j.ID || got.Attempt != attempt {
				t.Fatalf("fetched job %d attempt %d, want %d attempt %d", got.ID, got.Attempt, j.ID, attempt)
			}
			at := time.Now().Add(-time.Second).Truncate(time.Microsecond) // due again at once
			if attempt == 2 {
				at = time.Now().Add(time.Hour).Truncate(time.Microsecond)
			}
			ae := acidic.AttemptError{Attempt: attempt, At: time.Now().Truncate(time.Microsecond).UTC(), Error: fmt.Sprintf("failure %d", attempt)}
			wantErrs = append(wantErrs, ae)
			ok, err := drv.JobFinish(ctx, storage.JobFinishParams{
				JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: attempt}, State: acidic.JobRetryable, ScheduledAt: at, Error: &ae,
			})
			if err != nil || !ok {
				t.Fatalf("JobFinish attempt %d = %v, %v; want true", attempt, ok, err)
			}
			stored := getJob(ctx, t, drv, j.ID)
			if stored.State != acidic.JobRetryable || !stored.ScheduledAt.Equal(at) || stored.FinalizedAt != nil {
				t.Errorf("after attempt %d: state %s scheduled %v finalized %v; want retryable, %v, nil",
					attempt, stored.State, stored.ScheduledAt, stored.FinalizedAt, at)
			}
			if len(stored.Errors) != len(wantErrs) {
				t.Fatalf("after attempt %d: %d errors %v, want %d", attempt, len(stored.Errors), stored.Errors, len(wantErrs))
			}
			for i, e := range stored.Errors {
				if e.Attempt != wantErrs[i].Attempt || e.Error != wantErrs[i].Error || !e.At.Equal(wantErrs[i].At) {
					t.Errorf("error %d = %+v, want %+v", i, e, wantErrs[i])
				}
			}
		}
		if stored := getJob(ctx, t, drv, j.ID); stored.MaxAttempts != 3 {
			t.Errorf("max attempts = %d after failures, want 3 (unchanged)", stored.MaxAttempts)
		}
	})

	t.Run("snoozed", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		in := job("q")
		in.Meta = json.RawMessage(`{"keep":"me"}`)
		j := insertJobs(ctx, t, drv, in)[0]
		for snooze := 1; snooze <= 2; snooze++ {
			got := fetchOne(ctx, t, drv, "q", "w")
			at := time.Now().Add(-time.Second).Truncate(time.Microsecond)
			if snooze == 2 {
				at = time.Now().Add(time.Hour).Truncate(time.Microsecond)
			}
			ok, err := drv.JobFinish(ctx, storage.JobFinishParams{
				JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: got.Attempt}, State: acidic.JobScheduled, ScheduledAt: at,
			})
			if err != nil || !ok {
				t.Fatalf("snooze %d: JobFinish = %v, %v; want true", snooze, ok, err)
			}
			stored := getJob(ctx, t, drv, j.ID)
			if stored.State != acidic.JobScheduled || !stored.ScheduledAt.Equal(at) {
				t.Errorf("snooze %d: state %s scheduled %v; want scheduled, %v", snooze, stored.State, stored.ScheduledAt, at)
			}
			if stored.MaxAttempts != 3+snooze || stored.Attempt != snooze {
				t.Errorf("snooze %d: attempt %d of %d, want %d of %d", snooze, stored.Attempt, stored.MaxAttempts, snooze, 3+snooze)
			}
			if want := fmt.Sprintf(`{"keep":"me","snoozes":%d}`, snooze); !jsonEqual(t, stored.Meta, []byte(want)) {
				t.Errorf("snooze %d: meta = %s, want %s", snooze, stored.Meta, want)
			}
			if len(stored.Errors) != 0 || stored.FinalizedAt != nil {
				t.Errorf("snooze %d: errors %v finalized %v; want none", snooze, stored.Errors, stored.FinalizedAt)
			}
		}
	})

	t.Run("final states", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		for _, state := range []acidic.JobState{acidic.JobDiscarded, acidic.JobCancelled} {
			insertJobs(ctx, t, drv, job("q"))
			j := fetchOne(ctx, t, drv, "q", "w")
			ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: 1}, State: state,
				Error: &acidic.AttemptError{Attempt: 1, At: time.Now(), Error: "bad"}})
			if err != nil || !ok {
				t.Fatalf("JobFinish(%s) = %v, %v; want true", state, ok, err)
			}
			stored := getJob(ctx, t, drv, j.ID)
			if stored.State != state || stored.FinalizedAt == nil || len(stored.Errors) != 1 {
				t.Errorf("after JobFinish(%s): state %s finalized %v errors %v; want %s, set, 1 error",
					state, stored.State, stored.FinalizedAt, stored.Errors, state)
			}
			if !near(stored.ScheduledAt, j.ScheduledAt, 0) {
				t.Errorf("JobFinish(%s) without ScheduledAt moved scheduled_at from %v to %v", state, j.ScheduledAt, stored.ScheduledAt)
			}
		}
	})

	t.Run("fenced", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		insertJobs(ctx, t, drv, job("q"), job("q"))
		a := fetchOne(ctx, t, drv, "q", "w")
		b := fetchOne(ctx, t, drv, "q", "w")
		if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: b.ID, Attempt: 1}}}); err != nil || len(done) != 1 {
			t.Fatalf("JobComplete = %v, %v", done, err)
		}
		ae := &acidic.AttemptError{Attempt: 1, At: time.Now(), Error: "late"}
		for _, o := range []storage.JobFinishParams{
			{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 2}, State: acidic.JobRetryable, ScheduledAt: time.Now(), Error: ae},
			{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 0}, State: acidic.JobScheduled, ScheduledAt: time.Now()},
			{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: acidic.JobRetryable, ScheduledAt: time.Now(), Error: ae},
			{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: acidic.JobDiscarded, Error: ae},
			{JobAttempt: storage.JobAttempt{ID: 1 << 40, Attempt: 1}, State: acidic.JobDiscarded},
		} {
			ok, err := drv.JobFinish(ctx, o)
			if err != nil || ok {
				t.Errorf("JobFinish(%+v) = %v, %v; want false, nil", o, ok, err)
			}
		}
		if got := getJob(ctx, t, drv, a.ID); !reflect.DeepEqual(got, a) {
			t.Errorf("fenced JobFinish changed the running job:\n got %+v\nwant %+v", got, a)
		}
		if got := getJob(ctx, t, drv, b.ID); got.State != acidic.JobCompleted || len(got.Errors) != 0 || got.MaxAttempts != 3 {
			t.Errorf("fenced JobFinish changed the completed job: state %s errors %v max %d", got.State, got.Errors, got.MaxAttempts)
		}
	})
}

func testJobCancel(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	pending := job("p")
	pending.State = acidic.JobPending
	scheduled := job("s")
	scheduled.ScheduledAt = time.Now().Add(time.Hour)
	jobs := insertJobs(ctx, t, drv, job("avail"), job("run"), job("done"), pending, scheduled)
	running := fetchOne(ctx, t, drv, "run", "w")
	done := fetchOne(ctx, t, drv, "done", "w")
	if ids, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: done.ID, Attempt: 1}}}); err != nil || len(ids) != 1 {
		t.Fatalf("JobComplete = %v, %v", ids, err)
	}
	completed := getJob(ctx, t, drv, done.ID)

	for _, tc := range []struct {
		name string
		id   int64
	}{
		{"available", jobs[0].ID},
		{"running", running.ID},
		{"pending", jobs[3].ID},
		{"scheduled", jobs[4].ID},
	} {
		got, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: tc.id})
		if err != nil {
			t.Fatalf("JobCancel(%s): %v", tc.name, err)
		}
		if got.ID != tc.id || got.State != acidic.JobCancelled || got.FinalizedAt == nil {
			t.Errorf("JobCancel(%s) = job %d %s finalized %v; want %d cancelled, finalized", tc.name, got.ID, got.State, got.FinalizedAt, tc.id)
		}
		if stored := getJob(ctx, t, drv, tc.id); !reflect.DeepEqual(stored, got) {
			t.Errorf("JobCancel(%s) returned %+v but stored %+v", tc.name, got, stored)
		}
	}
	// A finished job is returned as it is, cancelled ones included.
	got, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: done.ID})
	if err != nil {
		t.Fatalf("JobCancel(completed): %v", err)
	}
	if !reflect.DeepEqual(got, completed) {
		t.Errorf("JobCancel(completed) = %+v, want it unchanged: %+v", got, completed)
	}
	before := getJob(ctx, t, drv, jobs[0].ID)
	again, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: jobs[0].ID})
	if err != nil || !reflect.DeepEqual(again, before) {
		t.Errorf("second JobCancel = %+v, %v; want unchanged %+v", again, err, before)
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: 1 << 40}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("JobCancel(unknown) err = %v, want ErrNotFound", err)
	}
	if _, err := drv.JobGet(ctx, storage.JobGetParams{ID: 1 << 40}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("JobGet(unknown) err = %v, want ErrNotFound", err)
	}
}

func testJobRetry(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	last := job("discard")
	last.MaxAttempts = 1
	jobs := insertJobs(ctx, t, drv, last, job("run"), job("later"), job("cancel"))

	// discarded after its only attempt
	d := fetchOne(ctx, t, drv, "discard", "w")
	ae := &acidic.AttemptError{Attempt: 1, At: time.Now(), Error: "fatal"}
	if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: d.ID, Attempt: 1}, State: acidic.JobDiscarded, Error: ae}); err != nil || !ok {
		t.Fatalf("JobFinish = %v, %v", ok, err)
	}
	// retryable an hour from now, with attempts left
	l := fetchOne(ctx, t, drv, "later", "w")
	if ok, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: l.ID, Attempt: 1}, State: acidic.JobRetryable, ScheduledAt: time.Now().Add(time.Hour), Error: ae}); err != nil || !ok {
		t.Fatalf("JobFinish = %v, %v", ok, err)
	}
	running := fetchOne(ctx, t, drv, "run", "w")
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: jobs[3].ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}

	for _, tc := range []struct {
		name        string
		id          int64
		maxAttempts int
		attempt     int
	}{
		{"discarded", d.ID, 2, 1},
		{"retryable", l.ID, 3, 1},
		{"cancelled", jobs[3].ID, 3, 0},
	} {
		before := time.Now()
		got, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: tc.id})
		if err != nil {
			t.Fatalf("JobRetry(%s): %v", tc.name, err)
		}
		if got.State != acidic.JobAvailable || got.FinalizedAt != nil || !near(got.ScheduledAt, before, time.Minute) {
			t.Errorf("JobRetry(%s): state %s finalized %v scheduled %v; want available, nil, now", tc.name, got.State, got.FinalizedAt, got.ScheduledAt)
		}
		if got.MaxAttempts != tc.maxAttempts || got.Attempt != tc.attempt {
			t.Errorf("JobRetry(%s): attempt %d of %d, want %d of %d", tc.name, got.Attempt, got.MaxAttempts, tc.attempt, tc.maxAttempts)
		}
		if tc.attempt > 0 && len(got.Errors) != 1 {
			t.Errorf("JobRetry(%s) lost the error history: %v", tc.name, got.Errors)
		}
	}
	// The retried discarded job runs again, as attempt 2 of 2.
	again := fetchOne(ctx, t, drv, "discard", "w2")
	if again.ID != d.ID || again.Attempt != 2 || again.MaxAttempts != 2 {
		t.Errorf("retried job fetched as %d attempt %d of %d, want %d attempt 2 of 2", again.ID, again.Attempt, again.MaxAttempts, d.ID)
	}

	// A retry wakes the workers of the job's queue; one that changes
	// nothing wakes nobody.
	woken := newListener(ctx, t, drv, storage.TopicInsert)
	if _, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: jobs[3].ID}); err != nil {
		t.Fatal(err)
	}
	if n := waitOne(ctx, t, woken); n.Payload != queueHint(ctx, t, drv, "cancel") {
		t.Errorf("retry woke %q, want queue cancel", n.Payload)
	}

	// A running job is returned unchanged.
	got, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: running.ID})
	if err != nil {
		t.Fatalf("JobRetry(running): %v", err)
	}
	if !reflect.DeepEqual(got, running) {
		t.Errorf("JobRetry(running) = %+v, want unchanged %+v", got, running)
	}
	waitNone(ctx, t, woken, 100*time.Millisecond)
	if _, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: 1 << 40}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("JobRetry(unknown) err = %v, want ErrNotFound", err)
	}
}

func testJobList(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	mk := func(q, kind string) storage.JobInsert {
		j := job(q)
		j.Kind = kind
		return j
	}
	future := mk("q1", "b")
	future.ScheduledAt = time.Now().Add(time.Hour)
	jobs := insertJobs(ctx, t, drv,
		mk("q1", "a"), // 0 available -> running
		mk("q1", "b"), // 1 available
		mk("q2", "a"), // 2 available
		future,        // 3 scheduled
		mk("q2", "b"), // 4 available -> cancelled
		mk("q1", "a"), // 5 available
	)
	id := func(i ...int) []int64 {
		out := make([]int64, len(i))
		for k, n := range i {
			out[k] = jobs[n].ID
		}
		return out
	}
	if got := fetchOne(ctx, t, drv, "q1", "w"); got.ID != jobs[0].ID {
		t.Fatalf("fetched %d, want %d", got.ID, jobs[0].ID)
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: jobs[4].ID}); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}

	for _, tc := range []struct {
		name string
		f    acidic.JobFilter
		want []int64
	}{
		{"all", acidic.JobFilter{}, id(0, 1, 2, 3, 4, 5)},
		{"available", acidic.JobFilter{States: []acidic.JobState{acidic.JobAvailable}}, id(1, 2, 5)},
		{"two states", acidic.JobFilter{States: []acidic.JobState{acidic.JobRunning, acidic.JobCancelled}}, id(0, 4)},
		{"queue", acidic.JobFilter{Queue: "q2"}, id(2, 4)},
		{"kind", acidic.JobFilter{Kind: "a"}, id(0, 2, 5)},
		{"queue and kind", acidic.JobFilter{Queue: "q1", Kind: "b"}, id(1, 3)},
		{"ids", acidic.JobFilter{IDs: id(5, 1, 3)}, id(1, 3, 5)},
		{"ids and state", acidic.JobFilter{IDs: id(0, 1, 3), States: []acidic.JobState{acidic.JobAvailable, acidic.JobScheduled}}, id(1, 3)},
		{"unknown id", acidic.JobFilter{IDs: []int64{1 << 40}}, nil},
		{"after", acidic.JobFilter{AfterID: jobs[2].ID}, id(3, 4, 5)},
		{"limit", acidic.JobFilter{Limit: 2}, id(0, 1)},
		{"page", acidic.JobFilter{Limit: 2, AfterID: jobs[1].ID}, id(2, 3)},
		{"after last", acidic.JobFilter{AfterID: jobs[5].ID}, nil},
		{"no match", acidic.JobFilter{Queue: "nope"}, nil},
		{"other run", acidic.JobFilter{RunID: uuid.New()}, nil},
		{"everything", acidic.JobFilter{Queue: "q1", Kind: "a", States: []acidic.JobState{acidic.JobAvailable}, AfterID: jobs[0].ID, Limit: 5}, id(5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ids(listJobs(ctx, t, drv, tc.f))
			if !slices.Equal(got, tc.want) {
				t.Errorf("JobList(%+v) = %v, want %v", tc.f, got, tc.want)
			}
		})
	}
}

// testJobWritesRefuseInvalidValues: a job write with a value the storage
// does not hold (a state it cannot set, a priority or attempt limit out of
// range, an unknown dependency rule) is refused with ErrInvalid, and
// nothing is written.
func testJobWritesRefuseInvalidValues(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	running := insertJobs(ctx, t, drv, job("q"))[0]
	fetchOne(ctx, t, drv, "q", "w")

	bad := map[string]func(*storage.JobInsert){
		"state running":          func(j *storage.JobInsert) { j.State = acidic.JobRunning },
		"state unknown":          func(j *storage.JobInsert) { j.State = "queued" },
		"negative priority":      func(j *storage.JobInsert) { j.Priority = -1 },
		"priority past lowest":   func(j *storage.JobInsert) { j.Priority = acidic.LowestJobPriority + 1 },
		"no attempts":            func(j *storage.JobInsert) { j.MaxAttempts = 0 },
		"attempts past int32":    func(j *storage.JobInsert) { j.MaxAttempts = math.MaxInt32 + 1 },
		"attempts wrapping to 0": func(j *storage.JobInsert) { j.MaxAttempts = 1 << 32 },
		"unknown dep. failure":   func(j *storage.JobInsert) { j.DependencyFailure = "retry" },
		"completed, with a key":  func(j *storage.JobInsert) { j.State = acidic.JobCompleted; j.UniqueKey = []byte("k") },
	}
	for name, spoil := range bad {
		j := job("fresh")
		spoil(&j)
		if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job("fresh"), j}}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("JobInsertMany(%s): err = %v, want ErrInvalid", name, err)
		}
		j.UniqueKey, j.UniqueStates = []byte("key-"+name), acidic.NewJobStates(acidic.JobAvailable)
		if _, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: j, Replace: storage.JobReplace{}}); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("JobInsertUnique(%s): err = %v, want ErrInvalid", name, err)
		}
	}
	for _, s := range []acidic.JobState{acidic.JobRunning, acidic.JobCompleted, acidic.JobAvailable, acidic.JobPending, "lost"} {
		ended, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(running.ID), State: s})
		if ended || !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("JobFinish(%q) = %v, %v; want ErrInvalid", s, ended, err)
		}
	}
	if j := getJob(ctx, t, drv, running.ID); j.State != acidic.JobRunning || j.Attempt != 1 {
		t.Errorf("after refused finishes the job is %s (attempt %d), want running (1)", j.State, j.Attempt)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: "fresh", Limit: 10}); err != nil || len(jobs) != 0 {
		t.Errorf("refused inserts left %d jobs (%v)", len(jobs), err)
	}
}

// testResolveDependenciesFromEndedJobs: a resolve seeded with the jobs that
// just ended settles their dependents level by level (a failure cascades
// down a chain in one call) and looks at nothing else; a sweep (nil)
// settles every pending job.
func testResolveDependenciesFromEndedJobs(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	roots := insertJobs(ctx, t, drv, job("q"), job("q"))
	a, other := roots[0], roots[1]
	dependent := func(deps ...int64) *acidic.Job {
		j := job("q")
		j.State, j.DependsOn = acidic.JobPending, deps
		return insertJobs(ctx, t, drv, j)[0]
	}
	b := dependent(a.ID)
	c := dependent(b.ID)
	unrelated := dependent(other.ID)
	for _, id := range []int64{a.ID, other.ID} {
		if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: id}); err != nil {
			t.Fatalf("JobCancel(%d): %v", id, err)
		}
	}

	failed, released, err := drv.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: []int64{a.ID}})
	if err != nil || failed != 2 || released != 0 {
		t.Fatalf("resolve from a = %d failed, %d released, %v; want b and c failed", failed, released, err)
	}
	for _, id := range []int64{b.ID, c.ID} {
		if j := getJob(ctx, t, drv, id); j.State != acidic.JobCancelled {
			t.Errorf("job %d is %s after its dependency chain failed, want cancelled", id, j.State)
		}
	}
	if j := getJob(ctx, t, drv, unrelated.ID); j.State != acidic.JobPending {
		t.Errorf("a dependent of a job outside the seeds is %s, want still pending", j.State)
	}

	if failed, _, err := drv.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: nil}); err != nil || failed != 1 {
		t.Fatalf("sweep = %d failed, %v; want the remaining dependent failed", failed, err)
	}
	if j := getJob(ctx, t, drv, unrelated.ID); j.State != acidic.JobCancelled {
		t.Errorf("after a sweep the dependent of the cancelled job is %s, want cancelled", j.State)
	}
}

// JobRetry of a completed job runs it again (storage.Driver: it makes any
// job but a running or pending one available now). The attempt count is
// kept; a job that had no attempts left gets exactly one more
// (max_attempts = attempt + 1), one with attempts left keeps its maximum.
func testJobRetryCompleted(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	last := job("done_last")
	last.MaxAttempts = 1
	insertJobs(ctx, t, drv, last, job("done_more"))
	complete := func(q string) *acidic.Job {
		t.Helper()
		j := fetchOne(ctx, t, drv, q, "w")
		if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{{ID: j.ID, Attempt: j.Attempt}}}); err != nil || len(done) != 1 {
			t.Fatalf("JobComplete(%s) = %v, %v", q, done, err)
		}
		if c := getJob(ctx, t, drv, j.ID); c.State != acidic.JobCompleted || c.Attempt != 1 || c.FinalizedAt == nil {
			t.Fatalf("job %s is %s, attempt %d, finalized %v; want completed after attempt 1", q, c.State, c.Attempt, c.FinalizedAt)
		}
		return j
	}
	for _, tc := range []struct {
		queue       string
		maxAttempts int
	}{
		{"done_last", 2}, // out of attempts: attempt + 1
		{"done_more", 3}, // attempts left: unchanged
	} {
		j := complete(tc.queue)
		woken := newListener(ctx, t, drv, storage.TopicInsert)
		before := time.Now()
		got, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: j.ID})
		if err != nil {
			t.Fatalf("JobRetry(%s): %v", tc.queue, err)
		}
		if got.ID != j.ID || got.State != acidic.JobAvailable || got.FinalizedAt != nil || !near(got.ScheduledAt, before, time.Minute) {
			t.Errorf("JobRetry(%s): job %d state %s finalized %v scheduled %v; want %d available, nil, now",
				tc.queue, got.ID, got.State, got.FinalizedAt, got.ScheduledAt, j.ID)
		}
		if got.Attempt != 1 || got.MaxAttempts != tc.maxAttempts {
			t.Errorf("JobRetry(%s): attempt %d of %d, want 1 of %d", tc.queue, got.Attempt, got.MaxAttempts, tc.maxAttempts)
		}
		if stored := getJob(ctx, t, drv, j.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("JobRetry(%s) returned %+v, stored %+v", tc.queue, got, stored)
		}
		if n := waitOne(ctx, t, woken); n.Payload != queueHint(ctx, t, drv, tc.queue) {
			t.Errorf("JobRetry(%s) woke %q, want its queue", tc.queue, n.Payload)
		}
		// It runs again, as its next attempt.
		again := fetchOne(ctx, t, drv, tc.queue, "w2")
		if again.ID != j.ID || again.Attempt != 2 || again.MaxAttempts != tc.maxAttempts {
			t.Errorf("retried %s fetched as %d attempt %d of %d, want %d attempt 2 of %d",
				tc.queue, again.ID, again.Attempt, again.MaxAttempts, j.ID, tc.maxAttempts)
		}
	}
}

// The fetch leases the run of a workflow job when the lease is free, and
// leaves a run alone that another attempt holds.
func testJobFetchLeasesFreeRuns(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	free := insertRun(ctx, t, drv, "free")
	held := leasedRun(ctx, t, drv, "held", "other")
	q := "fetch_" + uuid.NewString()
	var in []storage.JobInsert
	for _, r := range []*acidic.Run{free, held} {
		j := job(q)
		j.RunID, j.Kind = r.ID, r.Workflow
		in = append(in, j)
	}
	in = append(in, job(q)) // a plain job
	// A job of another kind on a free run (its finish callback, say) does
	// not carry the run, so it does not lease it.
	side := insertRun(ctx, t, drv, "side")
	sideJob := job(q)
	sideJob.RunID, sideJob.Kind = side.ID, "callback"
	in = append(in, sideJob)
	insertJobs(ctx, t, drv, in...)
	jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: q, Max: 10, WorkerID: "w"})
	if err != nil || len(jobs) != 4 {
		t.Fatalf("JobFetch: %d jobs, %v", len(jobs), err)
	}
	byRun := map[uuid.UUID]storage.FetchedJob{}
	for _, j := range jobs {
		byRun[j.RunID] = j
	}
	if j := byRun[uuid.Nil]; j.LeasedRun != nil {
		t.Errorf("plain job came with a leased run: %+v", j.LeasedRun)
	}
	if j := byRun[side.ID]; j.LeasedRun != nil {
		t.Errorf("job of another kind came with its run's lease: %+v", j.LeasedRun)
	}
	if r := getRun(ctx, t, drv, side.ID); r.LockedBy != "" || r.State != acidic.RunPending {
		t.Errorf("a job of another kind leased its run: locked by %q, state %s", r.LockedBy, r.State)
	}
	if j := byRun[held.ID]; j.LeasedRun != nil {
		t.Errorf("job of a run held by another attempt came with its lease: %+v", j.LeasedRun)
	}
	j := byRun[free.ID]
	if j.LeasedRun == nil || j.LeasedRun.ID != free.ID || j.LeasedRun.State != acidic.RunRunning || j.LeasedRun.LockedBy == "" {
		t.Fatalf("job of a free run: leased run %+v", j.LeasedRun)
	}
	stored := getRun(ctx, t, drv, free.ID)
	if stored.LockedBy != j.LeasedRun.LockedBy || stored.State != acidic.RunRunning || string(stored.Args) != string(free.Args) {
		t.Fatalf("stored run: locked by %q (fetch said %q), state %s, args %s", stored.LockedBy, j.LeasedRun.LockedBy, stored.State, stored.Args)
	}
	// The lease is the attempt's: the fenced update works with its token,
	// and cancelling the attempt frees it.
	if _, err := drv.RunUpdate(ctx, stepUpdate(stored, j.LeasedRun.LockedBy, "step2")); err != nil {
		t.Fatalf("RunUpdate with the fetch's token: %v", err)
	}
	if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: j.ID}); err != nil {
		t.Fatal(err)
	}
	if now := getRun(ctx, t, drv, free.ID); now.LockedBy != "" || now.State != acidic.RunPending {
		t.Fatalf("after the attempt was cancelled: locked by %q, state %s", now.LockedBy, now.State)
	}
}
