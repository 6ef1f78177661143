package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

func testRunInsert(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)

	before := time.Now()
	in := runInsert("key-1")
	r := insertRunWith(ctx, t, drv, in)
	if r.ID != in.ID || r.IdempotencyKey != in.IdempotencyKey || r.Workflow != in.Workflow || r.Queue != in.Queue ||
		r.RecoveryPoint != in.RecoveryPoint || r.DefinitionHash != in.DefinitionHash {
		t.Errorf("RunInsert returned %+v, not matching the input %+v", r, in)
	}
	if !jsonEqual(t, r.Args, in.Args) || string(r.Attrs) != "null" {
		t.Errorf("args/attrs = %s/%s, want %s/null", r.Args, r.Attrs, in.Args)
	}
	if r.State != acidic.RunPending || r.Cursor != 0 || r.LockedBy != "" || r.LockedAt != nil || r.LastRunAt != nil ||
		r.FinishedAt != nil || r.Error != "" || r.Result != nil || r.Awaiting != 0 || r.ParentRunID != uuid.Nil || r.ParentStep != "" {
		t.Errorf("new run is not fresh: %+v", r)
	}
	if !near(r.CreatedAt, before, time.Minute) || !near(r.UpdatedAt, before, time.Minute) {
		t.Errorf("created/updated at %v/%v, want about %v", r.CreatedAt, r.UpdatedAt, before)
	}
	if got := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(got, r) {
		t.Errorf("RunGet = %+v, want %+v", got, r)
	}
	if got, err := drv.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: "key-1"}); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("RunGetByKey = %+v, %v; want %+v", got, err, r)
	}

	// Same key again: the existing run, whatever the rest says.
	again := runInsert("key-1")
	again.Workflow = "other"
	got, created, err := drv.RunInsert(ctx, again)
	if err != nil {
		t.Fatalf("RunInsert(same key): %v", err)
	}
	if created {
		t.Error("RunInsert(same key) created = true, want false")
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("RunInsert(same key) = %+v, want the existing run %+v", got, r)
	}
	if _, err := drv.RunGet(ctx, storage.RunGetParams{ID: again.ID}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("RunGet(id of the refused insert) err = %v, want ErrNotFound", err)
	}

	// Attrs default to JSON null; a child records its parent.
	child := runInsert("child")
	child.ParentRunID, child.ParentStep = r.ID, "spawn"
	c := insertRunWith(ctx, t, drv, child)
	if string(c.Attrs) != "null" {
		t.Errorf("default attrs = %q, want null", c.Attrs)
	}
	if c.ParentRunID != r.ID || c.ParentStep != "spawn" {
		t.Errorf("child parent = %s/%q, want %s/spawn", c.ParentRunID, c.ParentStep, r.ID)
	}

	for _, call := range []func() error{
		func() error { _, err := drv.RunGet(ctx, storage.RunGetParams{ID: uuid.New()}); return err },
		func() error { _, err := drv.RunGetByKey(ctx, storage.RunGetByKeyParams{Key: "nope"}); return err },
	} {
		if err := call(); !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("lookup of a missing run: err = %v, want ErrNotFound", err)
		}
	}
}

func testRunInsertConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	for _, sameID := range []bool{false, true} {
		t.Run(fmt.Sprintf("same id %v", sameID), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := newDriver(t)
			const n = 10
			var (
				wg      sync.WaitGroup
				start   = make(chan struct{})
				runs    = make([]*acidic.Run, n)
				created = make([]bool, n)
				errs    = make([]error, n)
				shared  = uuid.New()
			)
			for i := range n {
				in := runInsert("contended")
				in.Args = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
				if sameID {
					in.ID = shared
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					runs[i], created[i], errs[i] = drv.RunInsert(ctx, in)
				}()
			}
			close(start)
			wg.Wait()

			creators := 0
			var id uuid.UUID
			for i := range n {
				if errs[i] != nil {
					t.Errorf("RunInsert #%d: %v", i, errs[i])
					continue
				}
				if created[i] {
					creators++
					id = runs[i].ID
				}
			}
			if creators != 1 {
				t.Fatalf("%d inserts report creating the run, want 1", creators)
			}
			for i := range n {
				if errs[i] == nil && runs[i].ID != id {
					t.Errorf("RunInsert #%d returned run %s, want %s", i, runs[i].ID, id)
				}
			}
			if all, err := drv.RunList(ctx, acidic.RunFilter{}); err != nil || len(all) != 1 {
				t.Errorf("RunList = %d runs, %v; want 1", len(all), err)
			}
		})
	}
}

func testRunLease(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()

	t.Run("free, then refused while fresh", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := insertRun(ctx, t, drv, "k")
		jobA, jobB := runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID)

		before := time.Now()
		got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: jobA})
		if !ok {
			t.Fatalf("RunLease of a free run refused: %+v", got)
		}
		if got.State != acidic.RunRunning || got.LockedBy != "a" || got.LockedAt == nil || got.LastRunAt == nil ||
			!near(*got.LockedAt, before, time.Minute) {
			t.Errorf("leased run: state %s locked by %q at %v, last run %v; want running, a, now", got.State, got.LockedBy, got.LockedAt, got.LastRunAt)
		}
		held := getRun(ctx, t, drv, r.ID)
		if !reflect.DeepEqual(held, got) {
			t.Errorf("RunGet = %+v, want the leased run %+v", held, got)
		}

		refused, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: jobB})
		if ok {
			t.Fatalf("second token took a fresh lease held by a running attempt: %+v", refused)
		}
		if !reflect.DeepEqual(refused, held) {
			t.Errorf("refused RunLease returned %+v, want the current run %+v", refused, held)
		}
	})

	// A lease lives as long as its holding attempt runs: however old, it is
	// never taken over while that attempt is running (its heartbeat keeps
	// it so). Once the attempt has ended, it is taken at once.
	t.Run("not taken over while the holder runs, taken once it ended", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := insertRun(ctx, t, drv, "k")
		jobA, jobB := runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID)
		if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: jobA}); !ok {
			t.Fatal("first lease refused")
		}
		ageHeartbeats(ctx, t, drv, jobA, jobB)
		if got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: jobB}); ok || got.LockedBy != "a" {
			t.Fatalf("an old lease whose attempt still runs was taken over: ok %v, locked by %q", ok, got.LockedBy)
		}
		if done, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{jobA}}); err != nil || len(done) != 1 {
			t.Fatalf("JobComplete(a) = %v, %v", done, err)
		}
		got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: jobB})
		if !ok || got.LockedBy != "b" {
			t.Fatalf("lease of an ended attempt not taken over: ok %v, locked by %q", ok, got.LockedBy)
		}
		// The old holder's fenced writes now fail.
		if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunRunning, RecoveryPoint: "x"}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Errorf("RunUpdate by the previous holder: err = %v, want ErrLeaseLost", err)
		}
	})

	t.Run("a lease needs a job attempt", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := insertRun(ctx, t, drv, "k")
		for _, p := range []storage.RunLeaseParams{{ID: r.ID, Token: "a"}, {ID: r.ID, Token: "", Job: runningJob(ctx, t, drv, r.ID)}} {
			if _, ok, err := drv.RunLease(ctx, p); ok || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("RunLease(%+v) = %v, %v; want ErrInvalid", p, ok, err)
			}
		}
		if got := getRun(ctx, t, drv, r.ID); got.LockedBy != "" || got.State != acidic.RunPending {
			t.Errorf("a refused lease wrote: %+v", got)
		}
	})

	// Rescue and cancellation free the lease of the attempt they end. (A job
	// completes only after its executor released the lease itself.)
	for _, how := range []string{"rescued", "cancelled"} {
		t.Run("holder's attempt "+how, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := newDriver(t)
			r := insertRun(ctx, t, drv, "k")
			jobA, jobB := runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID)
			if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: jobA}); !ok {
				t.Fatal("first lease refused")
			}
			switch how {
			case "rescued":
				ageHeartbeats(ctx, t, drv, jobB)
				if rescued, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: staleAfter, Limit: 10}); err != nil || len(rescued) != 1 || rescued[0].ID != jobA.ID {
					t.Fatalf("JobRescue = %v, %v; want [%d]", ids(rescued), err, jobA.ID)
				}
			case "cancelled":
				if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: jobA.ID}); err != nil {
					t.Fatalf("JobCancel: %v", err)
				}
			}
			got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: jobB})
			if !ok || got.LockedBy != "b" {
				t.Fatalf("lease of a %s attempt not taken over at once: ok %v, locked by %q", how, ok, got.LockedBy)
			}
		})
	}

	t.Run("rescued attempt running again is still defunct", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := insertRun(ctx, t, drv, "k")
		q := "lease_q"
		insertJobs(ctx, t, drv, job(q))
		first := fetchOne(ctx, t, drv, q, "w1")
		if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: storage.JobAttempt{ID: first.ID, Attempt: 1}}); !ok {
			t.Fatal("first lease refused")
		}
		ageHeartbeats(ctx, t, drv)
		if rescued, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: staleAfter, Limit: 10}); err != nil || len(rescued) != 1 {
			t.Fatalf("JobRescue = %v, %v", ids(rescued), err)
		}
		// Attempt 2 of the same job is running; attempt 1's lease is dead.
		second := fetchOne(ctx, t, drv, q, "w2")
		if second.ID != first.ID || second.Attempt != 2 {
			t.Fatalf("refetched %d attempt %d, want %d attempt 2", second.ID, second.Attempt, first.ID)
		}
		got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: storage.JobAttempt{ID: second.ID, Attempt: 2}})
		if !ok || got.LockedBy != "b" {
			t.Fatalf("lease of a rescued attempt not taken over by the job's next attempt: ok %v, locked by %q", ok, got.LockedBy)
		}
	})

	// The holder was rescued and its job claimed again: the lease of the
	// first attempt is dead for any other job's attempt too.
	t.Run("rescued attempt running again is free for another job", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		r := insertRun(ctx, t, drv, "k")
		q := "lease_q"
		insertJobs(ctx, t, drv, job(q))
		first := fetchOne(ctx, t, drv, q, "w1")
		if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: attempt1(first.ID)}); !ok {
			t.Fatal("first lease refused")
		}
		ageHeartbeats(ctx, t, drv)
		if rescued, err := drv.JobRescue(ctx, storage.JobRescueParams{StaleAfter: staleAfter, Limit: 10}); err != nil || len(rescued) != 1 {
			t.Fatalf("JobRescue = %v, %v", ids(rescued), err)
		}
		if second := fetchOne(ctx, t, drv, q, "w2"); second.ID != first.ID || second.Attempt != 2 {
			t.Fatalf("refetched %d attempt %d, want %d attempt 2", second.ID, second.Attempt, first.ID)
		}
		got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: runningJob(ctx, t, drv, r.ID)})
		if !ok || got.LockedBy != "b" {
			t.Fatalf("lease of a rescued attempt whose job runs again not taken by another job: ok %v, locked by %q", ok, got.LockedBy)
		}
	})

	t.Run("finished run", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		for _, state := range []acidic.RunState{acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled, acidic.RunAwaiting, acidic.RunHalted} {
			r := insertRun(ctx, t, drv, "k-"+string(state))
			set, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunPending}, To: state, Error: ""})
			if err != nil || !changed {
				t.Fatalf("RunSetState(%s) = %v, %v", state, changed, err)
			}
			got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: runningJob(ctx, t, drv, r.ID)})
			if ok {
				t.Errorf("leased a %s run", state)
			}
			if !reflect.DeepEqual(got, set) {
				t.Errorf("refused lease of a %s run returned %+v, want unchanged %+v", state, got, set)
			}
		}
	})

	t.Run("unknown run", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		drv := newDriver(t)
		_, ok, err := drv.RunLease(ctx, storage.RunLeaseParams{ID: uuid.New(), Token: "a", Job: storage.JobAttempt{ID: 1, Attempt: 1}})
		if ok || !errors.Is(err, acidic.ErrNotFound) {
			t.Errorf("RunLease(unknown) = %v, %v; want false, ErrNotFound", ok, err)
		}
	})
}

func testRunUpdate(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := leasedRun(ctx, t, drv, "k", "a")

	started := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	step := &acidic.Step{Position: 0, Name: "step1", State: acidic.StepSucceeded, Attempt: 1, Result: json.RawMessage(`{"r":1}`), StartedAt: started}
	upd := storage.RunUpdateParams{
		ID: r.ID, Token: "a", State: acidic.RunRunning, RecoveryPoint: "step2",
		Attrs: json.RawMessage(`{"x":1}`), Cursor: 5, Awaiting: 2, Step: step,
	}
	got, err := drv.RunUpdate(ctx, upd)
	if err != nil {
		t.Fatalf("RunUpdate: %v", err)
	}
	if got.RecoveryPoint != "step2" || got.Cursor != 5 || got.Awaiting != 2 || got.State != acidic.RunRunning ||
		!jsonEqual(t, got.Attrs, upd.Attrs) || got.LockedBy != "a" || got.LockedAt == nil || got.FinishedAt != nil {
		t.Errorf("RunUpdate returned %+v", got)
	}
	if !got.UpdatedAt.After(r.UpdatedAt) {
		t.Errorf("updated_at %v not after %v", got.UpdatedAt, r.UpdatedAt)
	}
	if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
		t.Errorf("RunGet = %+v, want %+v", stored, got)
	}
	steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID})
	if err != nil {
		t.Fatalf("RunSteps: %v", err)
	}
	if len(steps) != 1 {
		t.Fatalf("RunSteps = %+v, want 1 step", steps)
	}
	s := steps[0]
	if s.RunID != r.ID || s.Position != 0 || s.Name != "step1" || s.State != acidic.StepSucceeded || s.Attempt != 1 ||
		s.Executions != 1 || !jsonEqual(t, s.Result, step.Result) || s.Error != "" || !s.StartedAt.Equal(started) ||
		s.FinishedAt.Before(started) {
		t.Errorf("step = %+v, want %+v with 1 execution", s, step)
	}

	// The same position again counts another execution and keeps the rest
	// of the latest write.
	upd.Step = &acidic.Step{Position: 0, Name: "step1", State: acidic.StepFailed, Attempt: 2, Error: "oops", StartedAt: started}
	if _, err := drv.RunUpdate(ctx, upd); err != nil {
		t.Fatalf("second RunUpdate: %v", err)
	}
	// A next position is a new row; no step leaves the log alone.
	upd.Step = &acidic.Step{Position: 1, Name: "step2", State: acidic.StepRepeating, Attempt: 1, StartedAt: started}
	if _, err := drv.RunUpdate(ctx, upd); err != nil {
		t.Fatalf("third RunUpdate: %v", err)
	}
	upd.Step = nil
	if _, err := drv.RunUpdate(ctx, upd); err != nil {
		t.Fatalf("fourth RunUpdate: %v", err)
	}
	steps, err = drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID})
	if err != nil {
		t.Fatalf("RunSteps: %v", err)
	}
	if len(steps) != 2 {
		t.Fatalf("RunSteps = %+v, want 2 steps", steps)
	}
	if s := steps[0]; s.Executions != 2 || s.State != acidic.StepFailed || s.Attempt != 2 || s.Error != "oops" || s.Result != nil {
		t.Errorf("rewritten step = %+v, want 2 executions, failed, attempt 2, error oops, no result", s)
	}
	if s := steps[1]; s.Position != 1 || s.Name != "step2" || s.Executions != 1 || s.State != acidic.StepRepeating {
		t.Errorf("second step = %+v", s)
	}

	// A wrong token writes nothing, step included.
	beforeWrong := getRun(ctx, t, drv, r.ID)
	wrong := storage.RunUpdateParams{ID: r.ID, Token: "b", State: acidic.RunSucceeded, RecoveryPoint: "hijacked", Attrs: json.RawMessage(`{"x":99}`),
		Step: &acidic.Step{Position: 7, Name: "evil", State: acidic.StepSucceeded, Attempt: 1, StartedAt: started}}
	if _, err := drv.RunUpdate(ctx, wrong); !errors.Is(err, acidic.ErrLeaseLost) {
		t.Errorf("RunUpdate with a wrong token: err = %v, want ErrLeaseLost", err)
	}
	if after := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(after, beforeWrong) {
		t.Errorf("RunUpdate with a wrong token changed the run:\n got %+v\nwant %+v", after, beforeWrong)
	}
	if steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID}); err != nil || len(steps) != 2 {
		t.Errorf("after a wrong-token update RunSteps = %d steps, %v; want 2", len(steps), err)
	}

	// Release clears the lease and finishing sets finished_at, error and result.
	fin, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunFailed, RecoveryPoint: "step2",
		Attrs: json.RawMessage(`{"x":2}`), Release: true, Error: "gave up", Result: json.RawMessage(`{"partial":true}`)})
	if err != nil {
		t.Fatalf("releasing RunUpdate: %v", err)
	}
	if fin.LockedBy != "" || fin.LockedAt != nil || fin.State != acidic.RunFailed || fin.FinishedAt == nil ||
		fin.Error != "gave up" || !jsonEqual(t, fin.Result, []byte(`{"partial":true}`)) {
		t.Errorf("released run = %+v", fin)
	}
	// The released holder is fenced out too.
	if _, err := drv.RunUpdate(ctx, upd); !errors.Is(err, acidic.ErrLeaseLost) {
		t.Errorf("RunUpdate after Release: err = %v, want ErrLeaseLost", err)
	}
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: uuid.New(), Token: "a", State: acidic.RunRunning}); !errors.Is(err, acidic.ErrLeaseLost) {
		t.Errorf("RunUpdate of an unknown run: err = %v, want ErrLeaseLost", err)
	}
	if steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: uuid.New()}); err != nil || len(steps) != 0 {
		t.Errorf("RunSteps(unknown) = %v, %v; want nothing", steps, err)
	}
}

func testRunSetState(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := leasedRun(ctx, t, drv, "k", "a")

	steps := []struct {
		from    []acidic.RunState
		to      acidic.RunState
		errText string
		changed bool
		want    acidic.RunState
	}{
		{[]acidic.RunState{acidic.RunPending}, acidic.RunCancelled, "", false, acidic.RunRunning},
		{nil, acidic.RunCancelled, "", false, acidic.RunRunning},
		{[]acidic.RunState{acidic.RunPending, acidic.RunRunning}, acidic.RunCancelled, "stopped by operator", true, acidic.RunCancelled},
		{[]acidic.RunState{acidic.RunPending, acidic.RunRunning}, acidic.RunFailed, "", false, acidic.RunCancelled},
		{[]acidic.RunState{acidic.RunCancelled, acidic.RunFailed}, acidic.RunPending, "", true, acidic.RunPending},
		{[]acidic.RunState{acidic.RunPending}, acidic.RunSucceeded, "", true, acidic.RunSucceeded},
	}
	prev := getRun(ctx, t, drv, r.ID)
	for i, s := range steps {
		got, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: s.from, To: s.to, Error: s.errText})
		if err != nil {
			t.Fatalf("step %d: RunSetState(%v -> %s): %v", i, s.from, s.to, err)
		}
		if changed != s.changed || got.State != s.want {
			t.Errorf("step %d: RunSetState(%v -> %s) = %s, changed %v; want %s, changed %v", i, s.from, s.to, got.State, changed, s.want, s.changed)
		}
		if !changed {
			if !reflect.DeepEqual(got, prev) {
				t.Errorf("step %d: unchanged RunSetState returned %+v, want %+v", i, got, prev)
			}
		} else {
			if got.LockedBy != "" || got.LockedAt != nil {
				t.Errorf("step %d: lease not cleared: %q at %v", i, got.LockedBy, got.LockedAt)
			}
			if got.Error != s.errText {
				t.Errorf("step %d: error = %q, want %q", i, got.Error, s.errText)
			}
			if (got.FinishedAt != nil) != s.to.Final() {
				t.Errorf("step %d: state %s finished at %v", i, got.State, got.FinishedAt)
			}
		}
		if stored := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("step %d: RunGet = %+v, want %+v", i, stored, got)
		}
		prev = got
	}

	// After cancellation the old holder is fenced out.
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunRunning}); !errors.Is(err, acidic.ErrLeaseLost) {
		t.Errorf("RunUpdate after RunSetState: err = %v, want ErrLeaseLost", err)
	}
	if _, _, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: uuid.New(), From: []acidic.RunState{acidic.RunPending}, To: acidic.RunCancelled, Error: ""}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("RunSetState(unknown) err = %v, want ErrNotFound", err)
	}
}

func testRunList(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	mk := func(key, workflow string, parent uuid.UUID, parentStep string) *acidic.Run {
		in := runInsert(key)
		in.Workflow, in.ParentRunID, in.ParentStep = workflow, parent, parentStep
		return insertRunWith(ctx, t, drv, in)
	}
	p := mk("parent", "wf1", uuid.Nil, "")         // 0
	c1 := mk("child1", "wf2", p.ID, "fan")         // 1
	c2 := mk("child2", "wf1", p.ID, "spread")      // 2
	other := mk("other", "wf2", uuid.Nil, "")      // 3
	grand := mk("grandchild", "wf2", c1.ID, "fan") // 4
	lone := mk("lone", "wf3", uuid.Nil, "")        // 5
	runs := []*acidic.Run{p, c1, c2, other, grand, lone}
	for i := 1; i < len(runs); i++ {
		if !runs[i].CreatedAt.After(runs[i-1].CreatedAt) {
			t.Fatalf("run %d created at %v, not after run %d at %v", i, runs[i].CreatedAt, i-1, runs[i-1].CreatedAt)
		}
	}
	if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: c2.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunSucceeded, Error: ""}); err != nil || !changed {
		t.Fatalf("RunSetState = %v, %v", changed, err)
	}
	if _, changed, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: other.ID, From: []acidic.RunState{acidic.RunPending}, To: acidic.RunFailed, Error: "x"}); err != nil || !changed {
		t.Fatalf("RunSetState = %v, %v", changed, err)
	}
	id := func(i ...int) []uuid.UUID {
		out := make([]uuid.UUID, len(i))
		for k, n := range i {
			out[k] = runs[n].ID
		}
		return out
	}

	for _, tc := range []struct {
		name string
		f    acidic.RunFilter
		want []uuid.UUID
	}{
		{"all", acidic.RunFilter{}, id(0, 1, 2, 3, 4, 5)},
		{"pending", acidic.RunFilter{States: []acidic.RunState{acidic.RunPending}}, id(0, 1, 4, 5)},
		{"finished", acidic.RunFilter{States: []acidic.RunState{acidic.RunSucceeded, acidic.RunFailed}}, id(2, 3)},
		{"workflow", acidic.RunFilter{Workflow: "wf2"}, id(1, 3, 4)},
		{"children", acidic.RunFilter{ParentRunID: p.ID}, id(1, 2)},
		{"grandchildren", acidic.RunFilter{ParentRunID: c1.ID}, id(4)},
		{"children by workflow", acidic.RunFilter{ParentRunID: p.ID, Workflow: "wf1"}, id(2)},
		{"children by state", acidic.RunFilter{ParentRunID: p.ID, States: []acidic.RunState{acidic.RunPending}}, id(1)},
		{"children of a step", acidic.RunFilter{ParentRunID: p.ID, ParentStep: "spread"}, id(2)},
		{"children of a step, by state", acidic.RunFilter{ParentRunID: p.ID, ParentStep: "fan", States: []acidic.RunState{acidic.RunSucceeded}}, nil},
		{"no children", acidic.RunFilter{ParentRunID: lone.ID}, nil},
		{"limit", acidic.RunFilter{Limit: 2}, id(0, 1)},
		{"after", acidic.RunFilter{AfterCreatedAt: c2.CreatedAt, AfterID: c2.ID, Limit: 2}, id(3, 4)},
		{"unknown workflow", acidic.RunFilter{Workflow: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := drv.RunList(ctx, tc.f)
			if err != nil {
				t.Fatalf("RunList(%+v): %v", tc.f, err)
			}
			gotIDs := make([]uuid.UUID, len(got))
			for i, r := range got {
				gotIDs[i] = r.ID
			}
			if !slices.Equal(gotIDs, tc.want) {
				t.Errorf("RunList(%+v) = %v, want %v", tc.f, gotIDs, tc.want)
			}
		})
	}
}

// testRunListPagingSameCreatedAt pages through runs created in one
// transaction, which share created_at (now() is the transaction's start).
// Paging with AfterCreatedAt must still reach every run.
func testRunListPagingSameCreatedAt(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	want := map[uuid.UUID]bool{}
	err := drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		for i := range 3 {
			r := insertRun(ctx, t, tx, fmt.Sprintf("batch-%d", i))
			want[r.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	seen := map[uuid.UUID]bool{}
	var after time.Time
	var afterID uuid.UUID
	for page := 0; page < 10; page++ {
		runs, err := drv.RunList(ctx, acidic.RunFilter{Limit: 2, AfterCreatedAt: after, AfterID: afterID})
		if err != nil {
			t.Fatalf("RunList: %v", err)
		}
		if len(runs) == 0 {
			break
		}
		for _, r := range runs {
			if seen[r.ID] {
				t.Errorf("page %d repeats run %s", page, r.ID)
			}
			seen[r.ID] = true
		}
		after, afterID = runs[len(runs)-1].CreatedAt, runs[len(runs)-1].ID
	}
	if len(seen) != len(want) {
		t.Errorf("paging with AfterCreatedAt (limit 2) reached %d of %d runs created in one transaction", len(seen), len(want))
	}
}

// testRunWritesRefuseUnknownStates: a state the storage does not define is
// refused with ErrInvalid before anything is written, on every path that
// writes a run or step state.
func testRunWritesRefuseUnknownStates(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	r := leasedRun(ctx, t, drv, "k", "a")
	before := getRun(ctx, t, drv, r.ID)
	good := &acidic.Step{Position: 0, Name: "s", State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}
	bad := &acidic.Step{Position: 0, Name: "s", State: "done", Attempt: 1, StartedAt: time.Now()}

	attempts := map[string]func() error{
		"RunUpdate run state": func() error {
			_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: "sleeping", RecoveryPoint: "s", Step: good})
			return err
		},
		"RunUpdate step state": func() error {
			_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunRunning, RecoveryPoint: "s", Step: bad})
			return err
		},
		"RunUpdate awaiting": func() error {
			_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "a", State: acidic.RunAwaiting, RecoveryPoint: "s", Awaiting: -1})
			return err
		},
		"step transaction": func() error {
			_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
				return storage.StepCommit{Update: storage.RunUpdateParams{ID: r.ID, Token: "a", State: "", RecoveryPoint: "s", Step: good}}, nil
			})
			return err
		},
		"RunRelease run state": func() error {
			_, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: r.ID, Token: "a", State: "paused"})
			return err
		},
		"RunRelease step state": func() error {
			_, err := drv.RunRelease(ctx, storage.RunReleaseParams{ID: r.ID, Token: "a", State: acidic.RunPending, Step: bad})
			return err
		},
		"RunSetState": func() error {
			_, _, err := drv.RunSetState(ctx, storage.RunSetStateParams{ID: r.ID, From: []acidic.RunState{acidic.RunRunning}, To: "gone", Error: ""})
			return err
		},
	}
	for name, write := range attempts {
		if err := write(); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if after := getRun(ctx, t, drv, r.ID); !reflect.DeepEqual(after, before) {
		t.Errorf("refused writes changed the run: %+v, was %+v", after, before)
	}
	if steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID}); err != nil || len(steps) != 0 {
		t.Errorf("refused writes logged steps %+v (%v)", steps, err)
	}
}
