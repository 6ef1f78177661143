package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// errorLog collects the errors the queue hands a workflow's Backoff: the
// error each failed job attempt returned, as a value (not as text).
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

// options are workflow options with maxAttempts and a short backoff that
// records every failed attempt's error.
func (l *errorLog) options(maxAttempts int) workflow.Options {
	return workflow.Options{
		MaxAttempts: maxAttempts,
		Backoff: func(_ int, err error) time.Duration {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.errs = append(l.errs, err)
			return 5 * time.Millisecond
		},
	}
}

func (l *errorLog) all() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]error(nil), l.errs...)
}

// watchAwaiting samples the runs table until the returned function is
// called, which reports the runs it ever saw awaiting.
func watchAwaiting(t *testing.T, drv storage.Driver) func() []uuid.UUID {
	t.Helper()
	done := make(chan struct{})
	stopped := make(chan struct{})
	var mu sync.Mutex
	seen := map[uuid.UUID]bool{}
	var sampleErr error
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			runs, err := drv.RunList(context.Background(), acidic.RunFilter{States: []acidic.RunState{acidic.RunAwaiting}})
			mu.Lock()
			for _, r := range runs {
				seen[r.ID] = true
			}
			mu.Unlock()
			if err != nil {
				mu.Lock()
				sampleErr = err
				mu.Unlock()
				return
			}
		}
	}()
	var once sync.Once
	stop := func() []uuid.UUID {
		once.Do(func() { close(done); <-stopped })
		mu.Lock()
		defer mu.Unlock()
		if sampleErr != nil {
			t.Errorf("sampling awaiting runs: %v", sampleErr)
		}
		var out []uuid.UUID
		for id := range seen {
			out = append(out, id)
		}
		return out
	}
	t.Cleanup(func() { stop() }) // before the pool closes (cleanups run last first)
	return stop
}

// serializationFailure is the error the driver's database reports when a
// transaction must run again: SQLSTATE 40001 from PostgreSQL; the SQLite
// driver's is acidic.ErrSerialization (SQLITE_BUSY).
func serializationFailure(drv storage.Driver) error {
	if testdb.IsSQLite(drv) {
		return fmt.Errorf("database is locked: %w", acidic.ErrSerialization)
	}
	return &pgconn.PgError{Code: "40001", Message: "could not serialize access due to read/write dependencies among transactions"}
}

// isSerializationFailure reports whether err aborted a transaction that
// may succeed when run again (see acidic.ErrSerialization).
func isSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, acidic.ErrSerialization) ||
		errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

type guarArgs struct {
	N int `json:"n"`
}

// A step that awaits a run whose idempotency key names a run that already
// exists fails with ErrAwaitExisting: the existing run is not the step's
// child and would never count itself off the parent, which would then wait
// forever. Nothing the step staged commits and the parent never parks.
func TestAwaitOfExistingKeyFails(t *testing.T) {
	t.Parallel()
	const existingKey = "existing-child-key"
	for _, variant := range []string{"await step", "sc.Await after a fresh child"} {
		t.Run(variant, func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				var calls counter
				child := workflow.Define("child", workflow.Options{},
					steps.Do("work", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						calls.inc("child")
						return nil
					}))
				existing := steps.RunRequest{Workflow: "child", Args: guarArgs{N: 1}, Key: existingKey}
				fresh := steps.RunRequest{Workflow: "child", Args: guarArgs{N: 2}, Key: "fresh-child-key"}
				var mu sync.Mutex
				var awaitErrs []error // what sc.Await returned, in the sc.Await variant
				var fanOut steps.Step[guarArgs, noState]
				if variant == "await step" {
					fanOut = steps.AwaitRuns[guarArgs, noState]("fan-out", steps.AwaitOptions{}, existing)
				} else {
					fanOut = steps.Do("fan-out", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						err := sc.Await(ctx, fresh, existing)
						mu.Lock()
						awaitErrs = append(awaitErrs, err)
						mu.Unlock()
						return err
					})
				}
				var failures errorLog
				parent := workflow.Define("parent", failures.options(2), fanOut,
					steps.Do("after", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						calls.inc("after")
						return nil
					}))
				e := newEngine(t, drv, engineConfig(2), child, parent)
				ctx := ctxT(t)
				// The run the key names exists before the parent runs.
				pre, err := e.Enqueue(ctx, "child", guarArgs{N: 1}, workflow.EnqueueOptions{Key: existingKey})
				if err != nil || pre.Duplicate {
					t.Fatalf("enqueue the existing run: %v (duplicate %v)", err, pre != nil && pre.Duplicate)
				}
				stopWatch := watchAwaiting(t, drv)
				startEngine(t, e)
				id := enqueue(t, e, "parent", guarArgs{})

				r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
				if r.State != acidic.RunFailed {
					t.Fatalf("parent %s (awaiting %d, error %q), want failed", r.State, r.Awaiting, r.Error)
				}
				if !strings.Contains(r.Error, workflow.ErrAwaitExisting.Error()) || !strings.Contains(r.Error, pre.Run.ID.String()) {
					t.Errorf("parent's error %q, want %q naming run %s", r.Error, workflow.ErrAwaitExisting, pre.Run.ID)
				}
				if r.Awaiting != 0 || r.RecoveryPoint != "fan-out" {
					t.Errorf("parent awaits %d at %q, want 0 at fan-out", r.Awaiting, r.RecoveryPoint)
				}
				if s := stepLog(t, r, "fan-out"); s.State != acidic.StepFailed || !strings.Contains(s.Error, workflow.ErrAwaitExisting.Error()) {
					t.Errorf("fan-out step log %s %q, want failed with ErrAwaitExisting", s.State, s.Error)
				}
				if len(r.Steps) != 1 {
					t.Errorf("step log %+v, want only the failed fan-out", r.Steps)
				}
				// The error itself, as the job returned it (attempt 1 of 2).
				errs := failures.all()
				if len(errs) != 1 {
					t.Fatalf("%d failed attempts before the last, want 1: %v", len(errs), errs)
				}
				if !errors.Is(errs[0], workflow.ErrAwaitExisting) {
					t.Errorf("attempt error %v does not match ErrAwaitExisting", errs[0])
				}
				if variant != "await step" {
					mu.Lock()
					got := append([]error(nil), awaitErrs...)
					mu.Unlock()
					// One call per attempt, and one more per serialization retry of
					// the step's transaction (the existing run commits its own
					// step concurrently): those may fail so, the others must not.
					existed := 0
					for i, err := range got {
						switch {
						case errors.Is(err, workflow.ErrAwaitExisting):
							existed++
						case !isSerializationFailure(err):
							t.Errorf("call %d: sc.Await returned %v, want ErrAwaitExisting", i+1, err)
						}
					}
					if existed != 2 {
						t.Errorf("sc.Await failed with ErrAwaitExisting %d times, want 2 (once per attempt): %v", existed, got)
					}
				}

				if seen := stopWatch(); len(seen) != 0 {
					t.Errorf("runs %v were seen awaiting; the parent must never park on a run that is not its child", seen)
				}
				if calls.get("after") != 0 {
					t.Errorf("the step after the await ran %d times", calls.get("after"))
				}
				// The existing run was not adopted, and the rolled-back step left
				// no child behind (not even the fresh one it staged first).
				old := getRun(t, e, pre.Run.ID)
				if old.ParentRunID != uuid.Nil || old.ParentStep != "" {
					t.Errorf("the existing run became a child of %s (step %q)", old.ParentRunID, old.ParentStep)
				}
				children, err := e.List(ctx, acidic.RunFilter{ParentRunID: id})
				if err != nil {
					t.Fatal(err)
				}
				if len(children) != 0 {
					t.Errorf("parent has %d children, want none", len(children))
				}
				if n := countRows(t, drv, "runs", "workflow = 'child'"); n != 1 {
					t.Errorf("%d child runs, want only the existing one", n)
				}
				if n := countRows(t, drv, "runs", "idempotency_key = $1", fresh.Key); n != 0 {
					t.Errorf("the fresh child staged by the failed step exists (%d rows)", n)
				}
				for _, j := range waitJobsFinal(t, drv, id, "parent") {
					if j.State != acidic.JobDiscarded {
						t.Errorf("parent job %d is %s, want discarded", j.ID, j.State)
					}
				}
			})
		})
	}
}

// A step that awaits children and also returns a control result (Repeat,
// Snooze, Halt) is invalid: an await step parks the run, the control would
// have it go on. The step fails with steps.ErrInvalid, its transaction rolls
// back (no child exists) and the run never parks.
func TestAwaitWithControlResultIsInvalid(t *testing.T) {
	t.Parallel()
	for name, control := range map[string]func() error{
		"repeat":         steps.Repeat,
		"snooze":         func() error { return steps.Snooze(10 * time.Millisecond) },
		"halt":           steps.Halt,
		"wrapped repeat": func() error { return fmt.Errorf("more to do: %w", steps.Repeat()) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				var calls counter
				child := workflow.Define("child", workflow.Options{},
					steps.Do("work", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						calls.inc("child")
						return nil
					}))
				var failures errorLog
				parent := workflow.Define("parent", failures.options(2),
					steps.Do("fan-out", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						calls.inc("fan-out")
						if err := sc.Await(ctx, steps.RunRequest{Workflow: "child", Args: guarArgs{N: 1}}); err != nil {
							return fmt.Errorf("test setup: await: %w", err)
						}
						if sc.Awaiting() != 1 {
							return fmt.Errorf("test setup: awaiting %d", sc.Awaiting())
						}
						return control()
					}),
					steps.Do("after", func(ctx context.Context, sc *steps.Context[guarArgs, noState]) error {
						calls.inc("after")
						return nil
					}))
				e := newEngine(t, drv, engineConfig(2), child, parent)
				stopWatch := watchAwaiting(t, drv)
				startEngine(t, e)
				id := enqueue(t, e, "parent", guarArgs{})

				r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
				if r.State != acidic.RunFailed {
					t.Fatalf("parent %s at %q (awaiting %d, error %q), want failed", r.State, r.RecoveryPoint, r.Awaiting, r.Error)
				}
				if !strings.Contains(r.Error, steps.ErrInvalid.Error()) || strings.Contains(r.Error, "test setup") {
					t.Errorf("parent's error %q, want %q", r.Error, steps.ErrInvalid)
				}
				errs := failures.all()
				if len(errs) != 1 {
					t.Fatalf("%d failed attempts before the last, want 1: %v", len(errs), errs)
				}
				if !errors.Is(errs[0], steps.ErrInvalid) {
					t.Errorf("attempt error %v does not match steps.ErrInvalid", errs[0])
				}
				if _, ok := steps.AsControl(errs[0]); ok {
					t.Errorf("attempt error %v carries the control: it could be taken for one", errs[0])
				}
				if s := stepLog(t, r, "fan-out"); s.State != acidic.StepFailed {
					t.Errorf("fan-out step log %s, want failed", s.State)
				}
				if len(r.Steps) != 1 {
					t.Errorf("step log %+v, want only the failed fan-out", r.Steps)
				}
				if r.Awaiting != 0 || r.RecoveryPoint != "fan-out" || r.Cursor != 0 {
					t.Errorf("parent awaits %d at %q cursor %d, want 0 at fan-out cursor 0", r.Awaiting, r.RecoveryPoint, r.Cursor)
				}
				if seen := stopWatch(); len(seen) != 0 {
					t.Errorf("runs %v were seen awaiting", seen)
				}
				// One run of the step per attempt: the control did not repeat it.
				if n := calls.get("fan-out"); n != 2 {
					t.Errorf("fan-out ran %d times, want 2 (one per attempt)", n)
				}
				if n := countRows(t, drv, "runs", "workflow = 'child'"); n != 0 {
					t.Errorf("%d child runs exist; the failed step's transaction must roll them back", n)
				}
				if n := countRows(t, drv, "jobs", "kind = 'child'"); n != 0 {
					t.Errorf("%d child jobs exist", n)
				}
				waitJobsFinal(t, drv, id, "parent")
				if calls.get("child") != 0 || calls.get("after") != 0 {
					t.Errorf("child ran %d times, after %d; want 0 and 0", calls.get("child"), calls.get("after"))
				}
			})
		})
	}
}

// When a step's transaction hits a serialization failure, the engine runs
// the step again only after checking it still holds the run's lease: the
// failure may be another worker taking the run over, and the step's code
// (with its outside calls) must then not run a second time.
func TestStepRetryChecksLeaseFirst(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		const thief = "thief-token"
		var calls counter
		var mu sync.Mutex
		var heldBy string  // the lease token the first try saw
		var setupErr error // a failure of the test's own steal
		wf := workflow.Define("leased", fastOptions(3),
			steps.Do("first", func(ctx context.Context, sc *steps.Context[guarArgs, guarArgs]) error {
				if calls.inc("first") > 1 {
					sc.State.N = 99 // would be committed if the fence also failed
					return nil
				}
				// Another worker takes the run over: its lease has its own
				// token and belongs to a running attempt of another job (kept
				// alive: its heartbeat is in the future).
				bg := context.WithoutCancel(ctx)
				// (The step's transaction has not begun: on SQLite these writes
				// do not wait for it.)
				var by string
				var thiefJob int64
				err := testdb.QueryRowErr(bg, drv, "SELECT coalesce(locked_by, '') FROM "+table(drv, "runs")+" WHERE id = $1", []any{sc.RunID()}, &by)
				if err == nil {
					_, err = testdb.ExecErr(bg, drv, "INSERT INTO "+table(drv, "jobs")+
						" (queue, kind, args, state, attempt, max_attempts, scheduled_at, heartbeat_at, created_at) VALUES ('nobody', 'thief', '{}', 'running', 1, 1, $1, $2, $1)",
						time.Now(), time.Now().Add(time.Hour))
				}
				if err == nil {
					err = testdb.QueryRowErr(bg, drv, "SELECT id FROM "+table(drv, "jobs")+" WHERE kind = 'thief'", nil, &thiefJob)
				}
				if err == nil {
					var n int64
					n, err = testdb.ExecErr(bg, drv, "UPDATE "+table(drv, "runs")+
						" SET locked_by = $2, locked_at = $5, locked_job_id = $4, locked_attempt = 1 WHERE id = $1 AND locked_by = $3",
						sc.RunID(), thief, by, thiefJob, time.Now())
					if err == nil && n != 1 {
						err = fmt.Errorf("stole %d runs", n)
					}
				}
				mu.Lock()
				heldBy, setupErr = by, err
				mu.Unlock()
				return serializationFailure(drv)
			}),
			steps.Do("second", func(ctx context.Context, sc *steps.Context[guarArgs, guarArgs]) error {
				calls.inc("second")
				return nil
			}))
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		id := enqueue(t, e, "leased", guarArgs{N: 1})

		// The job keeps snoozing while the thief holds the lease; give it a few
		// rounds to run the step again, if it would.
		waitFor(t, 20*time.Second, "the job to snooze a few times", func() (bool, string) {
			jobs := jobsOf(t, drv, id, "leased")
			if len(jobs) != 1 {
				return false, describeJobs(jobs)
			}
			var meta struct {
				Snoozes int `json:"snoozes"`
			}
			_ = json.Unmarshal(jobs[0].Meta, &meta)
			return meta.Snoozes >= 3, fmt.Sprintf("%s meta %s", describeJobs(jobs), jobs[0].Meta)
		})
		time.Sleep(50 * time.Millisecond)
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(stopCtx); err != nil {
			t.Fatalf("Stop: %v", err)
		}

		mu.Lock()
		by, serr := heldBy, setupErr
		mu.Unlock()
		if serr != nil || by == "" || by == thief {
			t.Fatalf("test setup: the first try saw the lease held by %q and could not steal it: %v", by, serr)
		}
		if n := calls.get("first"); n != 1 {
			t.Errorf("step first ran %d times; after the serialization failure the engine must find the lease lost before running it again", n)
		}
		if n := calls.get("second"); n != 0 {
			t.Errorf("step second ran %d times, want 0", n)
		}
		r := getRun(t, e, id)
		var st guarArgs
		if err := json.Unmarshal(r.Attrs, &st); err != nil {
			t.Fatalf("run attrs %s: %v", r.Attrs, err)
		}
		if r.RecoveryPoint != "first" || r.Cursor != 0 || st.N != 0 {
			t.Errorf("run at %q cursor %d attrs %s; the run's progress must not move", r.RecoveryPoint, r.Cursor, r.Attrs)
		}
		if r.LockedBy != thief || r.State != acidic.RunRunning {
			t.Errorf("run %s locked by %q; the thief's lease must stand", r.State, r.LockedBy)
		}
		if r.Error != "" || len(r.Steps) != 0 {
			t.Errorf("run error %q, step log %+v; a lost lease is no step failure", r.Error, r.Steps)
		}
		jobs := jobsOf(t, drv, id, "leased")
		if len(jobs) != 1 {
			t.Fatalf("jobs %s, want one", describeJobs(jobs))
		}
		if j := jobs[0]; j.State.Final() || len(j.Errors) != 0 {
			t.Errorf("job %d %s with errors %+v; it should have snoozed, not failed", j.ID, j.State, j.Errors)
		}
	})
}
