package postgres_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// near reports whether got is within tolerance of want.
func near(got, want time.Time, tolerance time.Duration) bool {
	d := got.Sub(want)
	return d >= -tolerance && d <= tolerance
}

// jsonEqual compares two JSON documents by value (jsonb reformats them).
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

func TestJobInsertMany(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})

	before := time.Now()
	future := before.Add(time.Hour).Truncate(time.Microsecond)
	past := before.Add(-time.Hour).Truncate(time.Microsecond)
	in := []storage.JobInsert{
		{Queue: "qa", Kind: "k1", Args: json.RawMessage(`{"n":1}`), State: storage.JobAvailable, Priority: 2, MaxAttempts: 5},
		{Queue: "qb", Kind: "k2", Args: json.RawMessage(`{"n":2}`), State: storage.JobAvailable, MaxAttempts: 1, ScheduledAt: future},
		{Queue: "qa", Kind: "k3", Args: json.RawMessage(`[1,2]`), State: storage.JobPending, MaxAttempts: 3},
		{Queue: "qa", Kind: "k4", Args: json.RawMessage(`{}`), State: storage.JobScheduled, Priority: 3, MaxAttempts: 2, ScheduledAt: past,
			Meta: json.RawMessage(`{"m":"v"}`), UniqueKey: []byte("uk"), UniqueStates: storage.JobAvailable.Bit() | storage.JobPending.Bit()},
		{Queue: "qa", Kind: "k5", Args: json.RawMessage(`{}`), State: storage.JobPending, MaxAttempts: 3, ScheduledAt: future},
	}
	out := insertJobs(ctx, t, drv, in...)
	after := time.Now()

	wantState := []storage.JobState{storage.JobAvailable, storage.JobScheduled, storage.JobPending, storage.JobAvailable, storage.JobPending}
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
	if _, err := drv.JobInsertMany(ctx, []storage.JobInsert{job("qa"), dup}); err == nil {
		t.Error("JobInsertMany of a duplicate unique job succeeded, want a unique violation")
	}
	if got := listJobs(ctx, t, drv, storage.JobFilter{}); len(got) != len(in) {
		t.Errorf("after the failed batch there are %d jobs, want %d (batch must be atomic)", len(got), len(in))
	}

	// Nothing to insert.
	if got, err := drv.JobInsertMany(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("JobInsertMany(nil) = %v, %v; want no jobs and no error", got, err)
	}
}

func TestJobInsertManyWithRun(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	run := insertRun(ctx, t, drv, "key")
	in := job("q")
	in.RunID = run.ID
	j := insertJobs(ctx, t, drv, in)[0]
	if j.RunID != run.ID {
		t.Errorf("job run id = %s, want %s", j.RunID, run.ID)
	}
	if got := listJobs(ctx, t, drv, storage.JobFilter{RunID: run.ID}); len(got) != 1 || got[0].ID != j.ID {
		t.Errorf("JobList by run id = %v, want [%d]", ids(got), j.ID)
	}
}

func TestJobFetchOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
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
	pending.State = storage.JobPending
	pendingJob := insertJobs(ctx, t, drv, pending)[0]

	want := []int64{jobs[2].ID, jobs[4].ID, jobs[1].ID, jobs[3].ID, jobs[0].ID, jobs[7].ID}

	before := time.Now()
	first, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 3, WorkerID: "w1"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if !slices.Equal(ids(first), want[:3]) {
		t.Fatalf("first JobFetch(Max 3) = %v, want %v", ids(first), want[:3])
	}
	rest, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 100, WorkerID: "w2"})
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
		if j.State != storage.JobRunning || j.Attempt != 1 || j.AttemptedBy != worker || j.AttemptedAt == nil || !near(*j.AttemptedAt, before, time.Minute) {
			t.Errorf("fetched job %d: state %s attempt %d by %q at %v; want running, 1, %q, now",
				j.ID, j.State, j.Attempt, j.AttemptedBy, j.AttemptedAt, worker)
		}
		if got := getJob(ctx, t, drv, j.ID); got.State != storage.JobRunning || got.Attempt != 1 {
			t.Errorf("stored job %d: state %s attempt %d, want running 1", j.ID, got.State, got.Attempt)
		}
	}
	// Nothing left that is due: not the future job, the pending one or the other queue's.
	if more, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 100, WorkerID: "w3"}); err != nil || len(more) != 0 {
		t.Errorf("third JobFetch = %v, %v; want nothing", ids(more), err)
	}
	for _, id := range []int64{jobs[5].ID, pendingJob.ID, jobs[6].ID} {
		if j := getJob(ctx, t, drv, id); j.State == storage.JobRunning || j.Attempt != 0 {
			t.Errorf("job %d was claimed: state %s attempt %d", id, j.State, j.Attempt)
		}
	}
	// Max 0 claims nothing.
	if got, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "other", Max: 0, WorkerID: "w"}); err != nil || len(got) != 0 {
		t.Errorf("JobFetch(Max 0) = %v, %v; want nothing", ids(got), err)
	}
}

func TestJobFetchRetryable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	insertJobs(ctx, t, drv, job("q"), job("q"))
	a := fetchOne(ctx, t, drv, "q", "w")
	b := fetchOne(ctx, t, drv, "q", "w")
	// a is due again already; b in an hour.
	for _, o := range []storage.JobOutcome{
		{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 1}, State: storage.JobRetryable, ScheduledAt: time.Now().Add(-time.Second)},
		{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: storage.JobRetryable, ScheduledAt: time.Now().Add(time.Hour)},
	} {
		if ok, err := drv.JobFinish(ctx, o); err != nil || !ok {
			t.Fatalf("JobFinish(%+v) = %v, %v; want true", o, ok, err)
		}
	}
	got, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 10, WorkerID: "w2"})
	if err != nil {
		t.Fatalf("JobFetch: %v", err)
	}
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("JobFetch = %v, want [%d] (the due retryable job only)", ids(got), a.ID)
	}
	if got[0].Attempt != 2 || got[0].AttemptedBy != "w2" || got[0].State != storage.JobRunning {
		t.Errorf("refetched job: attempt %d by %q state %s; want 2, w2, running", got[0].Attempt, got[0].AttemptedBy, got[0].State)
	}
}

func TestJobFetchConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{MaxConns: 10})
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
				jobs, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 7, WorkerID: worker})
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
	running := listJobs(ctx, t, drv, storage.JobFilter{States: []storage.JobState{storage.JobRunning}})
	if len(running) != total {
		t.Errorf("%d jobs running, want %d", len(running), total)
	}
	for _, j := range running {
		if j.Attempt != 1 || claimed[j.ID] != j.AttemptedBy {
			t.Errorf("job %d: attempt %d by %q, but claimed by %q", j.ID, j.Attempt, j.AttemptedBy, claimed[j.ID])
		}
	}
}

func TestJobComplete(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	jobs := insertJobs(ctx, t, drv, job("q"), job("q"), job("idle"))
	a := fetchOne(ctx, t, drv, "q", "w")
	b := fetchOne(ctx, t, drv, "q", "w")
	idle := jobs[2]

	complete := func(attempts ...storage.JobAttempt) []int64 {
		t.Helper()
		done, err := drv.JobComplete(ctx, attempts)
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
	if j := getJob(ctx, t, drv, a.ID); j.State != storage.JobRunning || j.FinalizedAt != nil {
		t.Errorf("after a wrong-attempt complete, job is %s finalized %v; want running, nil", j.State, j.FinalizedAt)
	}
	if j := getJob(ctx, t, drv, idle.ID); j.State != storage.JobAvailable || j.FinalizedAt != nil {
		t.Errorf("after completing an available job, it is %s finalized %v; want available, nil", j.State, j.FinalizedAt)
	}

	// A batch: a right, b wrong.
	before := time.Now()
	done := complete(storage.JobAttempt{ID: a.ID, Attempt: 1}, storage.JobAttempt{ID: b.ID, Attempt: 7})
	if !slices.Equal(done, []int64{a.ID}) {
		t.Fatalf("JobComplete = %v, want [%d]", done, a.ID)
	}
	ja := getJob(ctx, t, drv, a.ID)
	if ja.State != storage.JobCompleted || ja.FinalizedAt == nil || !near(*ja.FinalizedAt, before, time.Minute) {
		t.Errorf("completed job is %s finalized %v; want completed, now", ja.State, ja.FinalizedAt)
	}
	if jb := getJob(ctx, t, drv, b.ID); jb.State != storage.JobRunning {
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
	if _, err := drv.JobCancel(ctx, b.ID); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if done := complete(storage.JobAttempt{ID: b.ID, Attempt: 1}); len(done) != 0 {
		t.Errorf("JobComplete of a cancelled job returned %v, want nothing", done)
	}
	if jb := getJob(ctx, t, drv, b.ID); jb.State != storage.JobCancelled {
		t.Errorf("cancelled job is %s after JobComplete, want cancelled", jb.State)
	}
}

func TestJobFinish(t *testing.T) {
	t.Parallel()

	t.Run("retryable appends errors", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := testdb.New(t, testdb.Options{})
		j := insertJobs(ctx, t, drv, job("q"))[0]
		var wantErrs []storage.AttemptError
		for attempt := 1; attempt <= 2; attempt++ {
			got := fetchOne(ctx, t, drv, "q", "w")
			if got.ID != j.ID || got.Attempt != attempt {
				t.Fatalf("fetched job %d attempt %d, want %d attempt %d", got.ID, got.Attempt, j.ID, attempt)
			}
			at := time.Now().Add(-time.Second).Truncate(time.Microsecond) // due again at once
			if attempt == 2 {
				at = time.Now().Add(time.Hour).Truncate(time.Microsecond)
			}
			ae := storage.AttemptError{Attempt: attempt, At: time.Now().Truncate(time.Microsecond).UTC(), Error: fmt.Sprintf("failure %d", attempt)}
			wantErrs = append(wantErrs, ae)
			ok, err := drv.JobFinish(ctx, storage.JobOutcome{
				JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: attempt}, State: storage.JobRetryable, ScheduledAt: at, Error: &ae,
			})
			if err != nil || !ok {
				t.Fatalf("JobFinish attempt %d = %v, %v; want true", attempt, ok, err)
			}
			stored := getJob(ctx, t, drv, j.ID)
			if stored.State != storage.JobRetryable || !stored.ScheduledAt.Equal(at) || stored.FinalizedAt != nil {
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
		drv := testdb.New(t, testdb.Options{})
		in := job("q")
		in.Meta = json.RawMessage(`{"keep":"me"}`)
		j := insertJobs(ctx, t, drv, in)[0]
		for snooze := 1; snooze <= 2; snooze++ {
			got := fetchOne(ctx, t, drv, "q", "w")
			at := time.Now().Add(-time.Second).Truncate(time.Microsecond)
			if snooze == 2 {
				at = time.Now().Add(time.Hour).Truncate(time.Microsecond)
			}
			ok, err := drv.JobFinish(ctx, storage.JobOutcome{
				JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: got.Attempt}, State: storage.JobScheduled, ScheduledAt: at,
			})
			if err != nil || !ok {
				t.Fatalf("snooze %d: JobFinish = %v, %v; want true", snooze, ok, err)
			}
			stored := getJob(ctx, t, drv, j.ID)
			if stored.State != storage.JobScheduled || !stored.ScheduledAt.Equal(at) {
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
		drv := testdb.New(t, testdb.Options{})
		for _, state := range []storage.JobState{storage.JobDiscarded, storage.JobCancelled} {
			insertJobs(ctx, t, drv, job("q"))
			j := fetchOne(ctx, t, drv, "q", "w")
			ok, err := drv.JobFinish(ctx, storage.JobOutcome{JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: 1}, State: state,
				Error: &storage.AttemptError{Attempt: 1, At: time.Now(), Error: "bad"}})
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
		drv := testdb.New(t, testdb.Options{})
		insertJobs(ctx, t, drv, job("q"), job("q"))
		a := fetchOne(ctx, t, drv, "q", "w")
		b := fetchOne(ctx, t, drv, "q", "w")
		if done, err := drv.JobComplete(ctx, []storage.JobAttempt{{ID: b.ID, Attempt: 1}}); err != nil || len(done) != 1 {
			t.Fatalf("JobComplete = %v, %v", done, err)
		}
		ae := &storage.AttemptError{Attempt: 1, At: time.Now(), Error: "late"}
		for _, o := range []storage.JobOutcome{
			{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 2}, State: storage.JobRetryable, ScheduledAt: time.Now(), Error: ae},
			{JobAttempt: storage.JobAttempt{ID: a.ID, Attempt: 0}, State: storage.JobScheduled, ScheduledAt: time.Now()},
			{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: storage.JobRetryable, ScheduledAt: time.Now(), Error: ae},
			{JobAttempt: storage.JobAttempt{ID: b.ID, Attempt: 1}, State: storage.JobDiscarded, Error: ae},
			{JobAttempt: storage.JobAttempt{ID: 1 << 40, Attempt: 1}, State: storage.JobDiscarded},
		} {
			ok, err := drv.JobFinish(ctx, o)
			if err != nil || ok {
				t.Errorf("JobFinish(%+v) = %v, %v; want false, nil", o, ok, err)
			}
		}
		if got := getJob(ctx, t, drv, a.ID); !reflect.DeepEqual(got, a) {
			t.Errorf("fenced JobFinish changed the running job:\n got %+v\nwant %+v", got, a)
		}
		if got := getJob(ctx, t, drv, b.ID); got.State != storage.JobCompleted || len(got.Errors) != 0 || got.MaxAttempts != 3 {
			t.Errorf("fenced JobFinish changed the completed job: state %s errors %v max %d", got.State, got.Errors, got.MaxAttempts)
		}
	})
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
	lost, err := drv.JobHeartbeat(ctx, attempts)
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
	if claimed, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 2, WorkerID: "w"}); err != nil || len(claimed) != 2 {
		t.Fatalf("JobFetch = %v, %v; want 2 jobs", ids(claimed), err)
	}
	running, cancelled := jobs[0].ID, jobs[1].ID
	if _, err := drv.JobCancel(ctx, cancelled); err != nil {
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
	lost, err := drv.JobLostAttempts(ctx, []storage.JobAttempt{attempt1(running), attempt1(cancelled), stale})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lost, func(a, b storage.JobStatus) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Attempt, b.Attempt))
	})
	want := []storage.JobStatus{
		{JobAttempt: stale, State: storage.JobRunning, CurrentAttempt: 1},
		{JobAttempt: attempt1(cancelled), State: storage.JobCancelled, CurrentAttempt: 1},
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
	if lost, err := drv.JobLostAttempts(ctx, nil); err != nil || len(lost) != 0 {
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
	claimed, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 4, WorkerID: "w1"})
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
	if lost, want := heartbeat(ctx, t, drv, wrong), []storage.JobStatus{{JobAttempt: wrong, State: storage.JobRunning, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
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
	first, err := drv.JobRescue(ctx, storage.JobRescue{StaleAfter: 10 * time.Minute, Limit: 1})
	if err != nil {
		t.Fatalf("JobRescue: %v", err)
	}
	if len(first) != 1 {
		t.Fatalf("JobRescue(limit 1) rescued %v, want 1 job", ids(first))
	}
	second, err := drv.JobRescue(ctx, storage.JobRescue{StaleAfter: 10 * time.Minute, Limit: 10})
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
		want := storage.JobRetryable
		if j.ID == discard {
			want = storage.JobDiscarded
		}
		if j.State != want {
			t.Errorf("rescued job %d is %s, want %s", j.ID, j.State, want)
		}
		if (j.FinalizedAt != nil) != (want == storage.JobDiscarded) {
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
	if j := getJob(ctx, t, drv, beating); j.State != storage.JobRunning || len(j.Errors) != 0 {
		t.Errorf("heartbeating job is %s with errors %v, want running, none", j.State, j.Errors)
	}
	// The worker learns on its next heartbeat that it lost the rescued jobs;
	// the one it still holds stays running.
	wantLost := []storage.JobStatus{{JobAttempt: attempt1(retry), State: storage.JobRetryable, CurrentAttempt: 1}, {JobAttempt: attempt1(discard), State: storage.JobDiscarded, CurrentAttempt: 1}}
	if lost := heartbeat(ctx, t, drv, attempt1(retry), attempt1(discard), attempt1(beating)); !slices.Equal(lost, wantLost) {
		t.Errorf("JobHeartbeat after rescue = %v, want %v", lost, wantLost)
	}
	// Nothing stale is left; a retryable rescued job is fetchable again.
	if more, err := drv.JobRescue(ctx, storage.JobRescue{StaleAfter: 10 * time.Minute, Limit: 10}); err != nil || len(more) != 0 {
		t.Errorf("third JobRescue = %v, %v; want nothing", ids(more), err)
	}
	refetched, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 10, WorkerID: "w3"})
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
	if lost, want := heartbeat(ctx, t, drv, attempt1(retry), second2), []storage.JobStatus{{JobAttempt: attempt1(retry), State: storage.JobRunning, CurrentAttempt: 2}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat(attempts 1 and 2 of a job at attempt 2) = %v, want %v", lost, want)
	}
	// An operator cancels the job w1 still works on: its heartbeat says so.
	if _, err := drv.JobCancel(ctx, beating); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	if lost, want := heartbeat(ctx, t, drv, attempt1(beating)), []storage.JobStatus{{JobAttempt: attempt1(beating), State: storage.JobCancelled, CurrentAttempt: 1}}; !slices.Equal(lost, want) {
		t.Errorf("JobHeartbeat of a cancelled job = %v, want %v", lost, want)
	}
	// The old attempt can no longer complete.
	if done, err := drv.JobComplete(ctx, []storage.JobAttempt{{ID: retry, Attempt: 1}}); err != nil || len(done) != 0 {
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
	if got, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: 5, WorkerID: "w"}); err != nil || len(got) != 5 {
		t.Fatalf("JobFetch = %v, %v", ids(got), err)
	}
	// 0, 1: completed. 2: discarded. 3: retryable. 4: running. 5: cancelled.
	// 6, 7: available.
	if done, err := drv.JobComplete(ctx, []storage.JobAttempt{{ID: id(0), Attempt: 1}, {ID: id(1), Attempt: 1}}); err != nil || len(done) != 2 {
		t.Fatalf("JobComplete = %v, %v", done, err)
	}
	for i, s := range map[int]storage.JobState{2: storage.JobDiscarded, 3: storage.JobRetryable} {
		if ok, err := drv.JobFinish(ctx, storage.JobOutcome{JobAttempt: storage.JobAttempt{ID: id(i), Attempt: 1}, State: s, ScheduledAt: time.Now()}); err != nil || !ok {
			t.Fatalf("JobFinish(%s) = %v, %v", s, ok, err)
		}
	}
	if _, err := drv.JobCancel(ctx, id(5)); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}
	// Old: 0 (completed), 2 (discarded), 5 (cancelled). 1 stays recent.
	exec(ctx, t, drv, `UPDATE {schema}.jobs SET finalized_at = now() - interval '2 hours' WHERE id = ANY($1)`, []int64{id(0), id(2), id(5)})
	// Old rows that never finished are not pruned, whatever their age.
	exec(ctx, t, drv, `UPDATE {schema}.jobs SET created_at = now() - interval '2 days', scheduled_at = now() - interval '2 days' WHERE id = ANY($1)`,
		[]int64{id(3), id(4), id(6)})

	pruned, err := drv.JobPrune(ctx, time.Hour, 2)
	if err != nil {
		t.Fatalf("JobPrune: %v", err)
	}
	if pruned != 2 {
		t.Errorf("JobPrune(limit 2) = %d, want 2", pruned)
	}
	pruned, err = drv.JobPrune(ctx, time.Hour, 100)
	if err != nil {
		t.Fatalf("JobPrune: %v", err)
	}
	if pruned != 1 {
		t.Errorf("second JobPrune = %d, want 1", pruned)
	}
	left := ids(listJobs(ctx, t, drv, storage.JobFilter{}))
	if want := []int64{id(1), id(3), id(4), id(6), id(7)}; !slices.Equal(left, want) {
		t.Errorf("jobs left after pruning = %v, want %v", left, want)
	}
	// A shorter retention reaches the recent completed job.
	if pruned, err := drv.JobPrune(ctx, 0, 100); err != nil || pruned != 1 {
		t.Errorf("JobPrune(retention 0) = %d, %v; want 1", pruned, err)
	}
}

func TestJobCancel(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	pending := job("p")
	pending.State = storage.JobPending
	scheduled := job("s")
	scheduled.ScheduledAt = time.Now().Add(time.Hour)
	jobs := insertJobs(ctx, t, drv, job("avail"), job("run"), job("done"), pending, scheduled)
	running := fetchOne(ctx, t, drv, "run", "w")
	done := fetchOne(ctx, t, drv, "done", "w")
	if ids, err := drv.JobComplete(ctx, []storage.JobAttempt{{ID: done.ID, Attempt: 1}}); err != nil || len(ids) != 1 {
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
		got, err := drv.JobCancel(ctx, tc.id)
		if err != nil {
			t.Fatalf("JobCancel(%s): %v", tc.name, err)
		}
		if got.ID != tc.id || got.State != storage.JobCancelled || got.FinalizedAt == nil {
			t.Errorf("JobCancel(%s) = job %d %s finalized %v; want %d cancelled, finalized", tc.name, got.ID, got.State, got.FinalizedAt, tc.id)
		}
		if stored := getJob(ctx, t, drv, tc.id); !reflect.DeepEqual(stored, got) {
			t.Errorf("JobCancel(%s) returned %+v but stored %+v", tc.name, got, stored)
		}
	}
	// A finished job is returned as it is, cancelled ones included.
	got, err := drv.JobCancel(ctx, done.ID)
	if err != nil {
		t.Fatalf("JobCancel(completed): %v", err)
	}
	if !reflect.DeepEqual(got, completed) {
		t.Errorf("JobCancel(completed) = %+v, want it unchanged: %+v", got, completed)
	}
	before := getJob(ctx, t, drv, jobs[0].ID)
	again, err := drv.JobCancel(ctx, jobs[0].ID)
	if err != nil || !reflect.DeepEqual(again, before) {
		t.Errorf("second JobCancel = %+v, %v; want unchanged %+v", again, err, before)
	}
	if _, err := drv.JobCancel(ctx, 1<<40); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("JobCancel(unknown) err = %v, want ErrNotFound", err)
	}
	if _, err := drv.JobGet(ctx, 1<<40); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("JobGet(unknown) err = %v, want ErrNotFound", err)
	}
}

func TestJobRetry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	last := job("discard")
	last.MaxAttempts = 1
	jobs := insertJobs(ctx, t, drv, last, job("run"), job("later"), job("cancel"))

	// discarded after its only attempt
	d := fetchOne(ctx, t, drv, "discard", "w")
	ae := &storage.AttemptError{Attempt: 1, At: time.Now(), Error: "fatal"}
	if ok, err := drv.JobFinish(ctx, storage.JobOutcome{JobAttempt: storage.JobAttempt{ID: d.ID, Attempt: 1}, State: storage.JobDiscarded, Error: ae}); err != nil || !ok {
		t.Fatalf("JobFinish = %v, %v", ok, err)
	}
	// retryable an hour from now, with attempts left
	l := fetchOne(ctx, t, drv, "later", "w")
	if ok, err := drv.JobFinish(ctx, storage.JobOutcome{JobAttempt: storage.JobAttempt{ID: l.ID, Attempt: 1}, State: storage.JobRetryable, ScheduledAt: time.Now().Add(time.Hour), Error: ae}); err != nil || !ok {
		t.Fatalf("JobFinish = %v, %v", ok, err)
	}
	running := fetchOne(ctx, t, drv, "run", "w")
	if _, err := drv.JobCancel(ctx, jobs[3].ID); err != nil {
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
		got, err := drv.JobRetry(ctx, tc.id)
		if err != nil {
			t.Fatalf("JobRetry(%s): %v", tc.name, err)
		}
		if got.State != storage.JobAvailable || got.FinalizedAt != nil || !near(got.ScheduledAt, before, time.Minute) {
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
	if _, err := drv.JobRetry(ctx, jobs[3].ID); err != nil {
		t.Fatal(err)
	}
	if n := waitOne(ctx, t, woken); n.Payload != queueHint(ctx, t, drv, "cancel") {
		t.Errorf("retry woke %q, want queue cancel", n.Payload)
	}

	// A running job is returned unchanged.
	got, err := drv.JobRetry(ctx, running.ID)
	if err != nil {
		t.Fatalf("JobRetry(running): %v", err)
	}
	if !reflect.DeepEqual(got, running) {
		t.Errorf("JobRetry(running) = %+v, want unchanged %+v", got, running)
	}
	waitNone(ctx, t, woken, 100*time.Millisecond)
	if _, err := drv.JobRetry(ctx, 1<<40); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("JobRetry(unknown) err = %v, want ErrNotFound", err)
	}
}

func TestJobList(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
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
	if _, err := drv.JobCancel(ctx, jobs[4].ID); err != nil {
		t.Fatalf("JobCancel: %v", err)
	}

	for _, tc := range []struct {
		name string
		f    storage.JobFilter
		want []int64
	}{
		{"all", storage.JobFilter{}, id(0, 1, 2, 3, 4, 5)},
		{"available", storage.JobFilter{States: []storage.JobState{storage.JobAvailable}}, id(1, 2, 5)},
		{"two states", storage.JobFilter{States: []storage.JobState{storage.JobRunning, storage.JobCancelled}}, id(0, 4)},
		{"queue", storage.JobFilter{Queue: "q2"}, id(2, 4)},
		{"kind", storage.JobFilter{Kind: "a"}, id(0, 2, 5)},
		{"queue and kind", storage.JobFilter{Queue: "q1", Kind: "b"}, id(1, 3)},
		{"ids", storage.JobFilter{IDs: id(5, 1, 3)}, id(1, 3, 5)},
		{"ids and state", storage.JobFilter{IDs: id(0, 1, 3), States: []storage.JobState{storage.JobAvailable, storage.JobScheduled}}, id(1, 3)},
		{"unknown id", storage.JobFilter{IDs: []int64{1 << 40}}, nil},
		{"after", storage.JobFilter{AfterID: jobs[2].ID}, id(3, 4, 5)},
		{"limit", storage.JobFilter{Limit: 2}, id(0, 1)},
		{"page", storage.JobFilter{Limit: 2, AfterID: jobs[1].ID}, id(2, 3)},
		{"after last", storage.JobFilter{AfterID: jobs[5].ID}, nil},
		{"no match", storage.JobFilter{Queue: "nope"}, nil},
		{"other run", storage.JobFilter{RunID: uuid.New()}, nil},
		{"everything", storage.JobFilter{Queue: "q1", Kind: "a", States: []storage.JobState{storage.JobAvailable}, AfterID: jobs[0].ID, Limit: 5}, id(5)},
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
		jobs, err := drv.JobFetch(ctx, storage.JobFetch{Queue: "q", Max: batch, WorkerID: "w"})
		if err != nil || len(jobs) != batch {
			t.Fatalf("JobFetch(%d) = %d jobs, %v", batch, len(jobs), err)
		}
		attempts := make([]storage.JobAttempt, len(jobs))
		for i, j := range jobs {
			attempts[i] = storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}
		}
		if done, err := drv.JobComplete(ctx, attempts); err != nil || len(done) != batch {
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

// TestJobWritesRefuseInvalidValues: the jobs table carries no CHECK
// constraints (migration 0006), so the driver refuses what they refused,
// before writing anything.
func TestJobWritesRefuseInvalidValues(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	running := insertJobs(ctx, t, drv, job("q"))[0]
	fetchOne(ctx, t, drv, "q", "w")

	bad := map[string]func(*storage.JobInsert){
		"state running":          func(j *storage.JobInsert) { j.State = storage.JobRunning },
		"state unknown":          func(j *storage.JobInsert) { j.State = "queued" },
		"negative priority":      func(j *storage.JobInsert) { j.Priority = -1 },
		"priority past lowest":   func(j *storage.JobInsert) { j.Priority = storage.LowestJobPriority + 1 },
		"no attempts":            func(j *storage.JobInsert) { j.MaxAttempts = 0 },
		"attempts past int32":    func(j *storage.JobInsert) { j.MaxAttempts = math.MaxInt32 + 1 },
		"attempts wrapping to 0": func(j *storage.JobInsert) { j.MaxAttempts = 1 << 32 },
		"unknown dep. failure":   func(j *storage.JobInsert) { j.DependencyFailure = "retry" },
		"completed, with a key":  func(j *storage.JobInsert) { j.State = storage.JobCompleted; j.UniqueKey = []byte("k") },
	}
	for name, spoil := range bad {
		j := job("fresh")
		spoil(&j)
		if _, err := drv.JobInsertMany(ctx, []storage.JobInsert{job("fresh"), j}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("JobInsertMany(%s): err = %v, want ErrInvalid", name, err)
		}
		j.UniqueKey, j.UniqueStates = []byte("key-"+name), storage.JobAvailable.Bit()
		if _, err := drv.JobInsertUnique(ctx, j, storage.JobReplace{}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("JobInsertUnique(%s): err = %v, want ErrInvalid", name, err)
		}
	}
	for _, s := range []storage.JobState{storage.JobRunning, storage.JobCompleted, storage.JobAvailable, storage.JobPending, "lost"} {
		ended, err := drv.JobFinish(ctx, storage.JobOutcome{JobAttempt: attempt1(running.ID), State: s})
		if ended || !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("JobFinish(%q) = %v, %v; want ErrInvalid", s, ended, err)
		}
	}
	if j := getJob(ctx, t, drv, running.ID); j.State != storage.JobRunning || j.Attempt != 1 {
		t.Errorf("after refused finishes the job is %s (attempt %d), want running (1)", j.State, j.Attempt)
	}
	if jobs, err := drv.JobList(ctx, storage.JobFilter{Queue: "fresh", Limit: 10}); err != nil || len(jobs) != 0 {
		t.Errorf("refused inserts left %d jobs (%v)", len(jobs), err)
	}
}

// TestResolveDependenciesFromEndedJobs: a resolve seeded with the jobs that
// just ended settles their dependents level by level (a failure cascades
// down a chain in one call) and looks at nothing else; a sweep (nil)
// settles every pending job.
func TestResolveDependenciesFromEndedJobs(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	roots := insertJobs(ctx, t, drv, job("q"), job("q"))
	a, other := roots[0], roots[1]
	dependent := func(deps ...int64) *storage.Job {
		j := job("q")
		j.State, j.DependsOn = storage.JobPending, deps
		return insertJobs(ctx, t, drv, j)[0]
	}
	b := dependent(a.ID)
	c := dependent(b.ID)
	unrelated := dependent(other.ID)
	for _, id := range []int64{a.ID, other.ID} {
		if _, err := drv.JobCancel(ctx, id); err != nil {
			t.Fatalf("JobCancel(%d): %v", id, err)
		}
	}

	failed, released, err := drv.JobResolveDependencies(ctx, []int64{a.ID})
	if err != nil || failed != 2 || released != 0 {
		t.Fatalf("resolve from a = %d failed, %d released, %v; want b and c failed", failed, released, err)
	}
	for _, id := range []int64{b.ID, c.ID} {
		if j := getJob(ctx, t, drv, id); j.State != storage.JobCancelled {
			t.Errorf("job %d is %s after its dependency chain failed, want cancelled", id, j.State)
		}
	}
	if j := getJob(ctx, t, drv, unrelated.ID); j.State != storage.JobPending {
		t.Errorf("a dependent of a job outside the seeds is %s, want still pending", j.State)
	}

	if failed, _, err := drv.JobResolveDependencies(ctx, nil); err != nil || failed != 1 {
		t.Fatalf("sweep = %d failed, %v; want the remaining dependent failed", failed, err)
	}
	if j := getJob(ctx, t, drv, unrelated.ID); j.State != storage.JobCancelled {
		t.Errorf("after a sweep the dependent of the cancelled job is %s, want cancelled", j.State)
	}
}

// JobRetry of a completed job runs it again (storage.Driver: it makes any
// job but a running or pending one available now). The attempt count is
// kept; a job that had no attempts left gets exactly one more
// (max_attempts = attempt + 1), one with attempts left keeps its maximum.
func TestJobRetryCompleted(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	last := job("done_last")
	last.MaxAttempts = 1
	insertJobs(ctx, t, drv, last, job("done_more"))
	complete := func(q string) *storage.Job {
		t.Helper()
		j := fetchOne(ctx, t, drv, q, "w")
		if done, err := drv.JobComplete(ctx, []storage.JobAttempt{{ID: j.ID, Attempt: j.Attempt}}); err != nil || len(done) != 1 {
			t.Fatalf("JobComplete(%s) = %v, %v", q, done, err)
		}
		if c := getJob(ctx, t, drv, j.ID); c.State != storage.JobCompleted || c.Attempt != 1 || c.FinalizedAt == nil {
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
		got, err := drv.JobRetry(ctx, j.ID)
		if err != nil {
			t.Fatalf("JobRetry(%s): %v", tc.queue, err)
		}
		if got.ID != j.ID || got.State != storage.JobAvailable || got.FinalizedAt != nil || !near(got.ScheduledAt, before, time.Minute) {
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
