package workflow_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

type contendedArgs struct {
	N int `json:"n"`
}

// createExecutions makes a table recording every execution of a step's code,
// committed or not (it is written outside the step's transaction).
func createExecutions(t *testing.T, drv *postgres.Driver) {
	execSQL(t, drv, "CREATE TABLE "+table(drv, "executions")+
		" (id bigserial PRIMARY KEY, run_id uuid NOT NULL, step text NOT NULL, engine text NOT NULL,"+
		" started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL)")
}

func recordExecution(drv *postgres.Driver, runID uuid.UUID, step, engine string, started, finished time.Time) error {
	_, err := drv.Pool().Exec(context.Background(), "INSERT INTO "+table(drv, "executions")+
		" (run_id, step, engine, started_at, finished_at) VALUES ($1, $2, $3, $4, $5)", runID, step, engine, started, finished)
	return err
}

// Two engines work the same runs: extra jobs for each run make both try to
// execute it at once. The run's lease must serialize them.
func TestTwoEnginesNeverRunOneRunConcurrently(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{MaxConns: 20})
	createEffects(t, drv)
	createExecutions(t, drv)

	define := func(engine string) *workflow.Workflow[contendedArgs, noState] {
		step := func(name string) steps.Step[contendedArgs, noState] {
			return steps.Do(name, func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				started := time.Now()
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), name, 0); err != nil {
					return err
				}
				time.Sleep(time.Duration(10+sc.Args.N%3*5) * time.Millisecond)
				return recordExecution(drv, sc.RunID(), name, engine, started, time.Now())
			})
		}
		return workflow.Define("contended", fastOptions(5), step("one"), step("two"), step("three"))
	}
	a := newEngine(t, drv, engineConfig(2), define("A"))
	b := newEngine(t, drv, engineConfig(3), define("B"))

	ctx := ctxT(t)
	const runs, extra = 6, 3
	ids := make([]uuid.UUID, runs)
	for i := range ids {
		ids[i] = enqueue(t, a, "contended", contendedArgs{N: i})
		for k := range extra {
			q := a.Queue()
			if k%2 == 1 {
				q = b.Queue()
			}
			if _, err := q.Enqueue(ctx, "contended", json.RawMessage("{}"), queue.EnqueueOptions{}.ForRun(ids[i])); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Start both only now, so the jobs of one run are fetched side by side.
	startEngine(t, a)
	startEngine(t, b)

	var snoozed int
	for _, id := range ids {
		r := waitRun(t, a, id, storage.RunSucceeded, storage.RunFailed, storage.RunCancelled)
		if r.State != storage.RunSucceeded {
			t.Fatalf("run %s: %s (%s)", id, r.State, r.Error)
		}
		// Every job of the run ends, and none failed an attempt.
		for _, j := range waitJobsFinal(t, drv, id, "contended") {
			if j.State != storage.JobCompleted || len(j.Errors) != 0 {
				t.Errorf("run %s: job %d %s with errors %v", id, j.ID, j.State, j.Errors)
			}
			var meta struct {
				Snoozes int `json:"snoozes"`
			}
			_ = json.Unmarshal(j.Meta, &meta)
			snoozed += meta.Snoozes
		}
		r = getRun(t, a, id)
		for _, name := range []string{"one", "two", "three"} {
			if n := countEffects(t, drv, id, name); n != 1 {
				t.Errorf("run %s step %s: %d effects, want 1", id, name, n)
			}
			if s := stepLog(t, r, name); s.State != storage.StepSucceeded || s.Executions != 1 {
				t.Errorf("run %s step %s: log %s with %d executions, want succeeded once", id, name, s.State, s.Executions)
			}
		}
	}

	rows, err := drv.Pool().Query(ctx, "SELECT x.run_id, x.step, x.engine, x.started_at, x.finished_at, y.step, y.engine, y.started_at, y.finished_at"+
		" FROM "+table(drv, "executions")+" x JOIN "+table(drv, "executions")+" y"+
		" ON x.run_id = y.run_id AND x.id < y.id AND x.started_at < y.finished_at AND y.started_at < x.finished_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var xs, xe, ys, ye string
		var xa, xb, ya, yb time.Time
		if err := rows.Scan(&id, &xs, &xe, &xa, &xb, &ys, &ye, &ya, &yb); err != nil {
			t.Fatal(err)
		}
		t.Errorf("run %s: step %s on %s [%s, %s] overlaps step %s on %s [%s, %s]", id,
			xs, xe, xa.Format(time.StampMicro), xb.Format(time.StampMicro), ys, ye, ya.Format(time.StampMicro), yb.Format(time.StampMicro))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// The test only means something if the engines did contend.
	var engines int
	if err := drv.Pool().QueryRow(ctx, "SELECT count(DISTINCT engine) FROM "+table(drv, "executions")).Scan(&engines); err != nil {
		t.Fatal(err)
	}
	if engines != 2 || snoozed == 0 {
		t.Errorf("no contention: steps ran on %d engines, %d jobs waited for a lease", engines, snoozed)
	}
	t.Logf("%d executions recorded, %d lease waits", countRows(t, drv, "executions", ""), snoozed)
}

// A worker that hangs inside a step (ignoring its context) loses the run's
// lease after LockTimeout; another engine takes over and finishes the run.
// When the hung step finally returns, its transaction must not commit.
func TestHungStepLosesLeaseAndCannotCommit(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	// No primary key here: a second commit of step two would show as a second row.
	execSQL(t, drv, "CREATE TABLE "+table(drv, "charges")+" (run_id uuid NOT NULL, engine text NOT NULL)")

	entered := make(chan struct{})
	release := make(chan struct{})
	hungDone := make(chan struct{})
	var aCalls atomic.Int32
	define := func(engine string, hang bool) *workflow.Workflow[contendedArgs, noState] {
		return workflow.Define("takeover", fastOptions(5),
			steps.Do("one", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "one", 0)
			}),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				if hang && aCalls.Add(1) == 1 {
					close(entered)
					<-release // ignores ctx: a worker stuck in a call without a deadline
					defer close(hungDone)
				}
				_, err := postgres.PgxTx(sc.Tx()).Exec(ctx, "INSERT INTO "+table(drv, "charges")+" (run_id, engine) VALUES ($1, $2)", sc.RunID(), engine)
				return err
			}),
			steps.Do("three", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "three", 0)
			}),
		)
	}
	cfgA := engineConfig(1)
	cfgA.LockTimeout = 200 * time.Millisecond
	a := newEngine(t, drv, cfgA, define("A", true))
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release) // let A's worker go if the test failed early
		}
	})
	startEngine(t, a)
	id := enqueue(t, a, "takeover", contendedArgs{})
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("engine A never reached step two")
	}

	cfgB := engineConfig(2)
	cfgB.LockTimeout = 200 * time.Millisecond
	b := newEngine(t, drv, cfgB, define("B", false))
	startEngine(t, b)
	started := time.Now()
	if _, err := b.Queue().Enqueue(ctxT(t), "takeover", json.RawMessage("{}"), queue.EnqueueOptions{}.ForRun(id)); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, b, id, storage.RunSucceeded, storage.RunFailed, storage.RunCancelled)
	if r.State != storage.RunSucceeded {
		t.Fatalf("run %s (%s), want B to finish it", r.State, r.Error)
	}
	if took := time.Since(started); took < 100*time.Millisecond {
		t.Errorf("B finished the run %s after it was enqueued, before A's lease could have expired", took)
	}
	if n := countRows(t, drv, "charges", "run_id = $1 AND engine = 'B'", id); n != 1 {
		t.Fatalf("%d charges by B, want 1", n)
	}

	// Now A's hung step returns and tries to commit.
	close(release)
	select {
	case <-hungDone:
	case <-time.After(20 * time.Second):
		t.Fatal("A's step two never returned")
	}
	waitJobsFinal(t, drv, id, "takeover")

	if n := countRows(t, drv, "charges", "run_id = $1", id); n != 1 {
		t.Errorf("%d charges for the run, want exactly 1 (A's late commit went through: %d by A)", n,
			countRows(t, drv, "charges", "run_id = $1 AND engine = 'A'", id))
	}
	r = getRun(t, a, id)
	if r.State != storage.RunSucceeded {
		t.Errorf("after A's step returned: run %s (%s), want still succeeded", r.State, r.Error)
	}
	if s := stepLog(t, r, "two"); s.Executions != 1 || s.State != storage.StepSucceeded {
		t.Errorf("step two log: %s, %d executions; want succeeded once", s.State, s.Executions)
	}
	for _, name := range []string{"one", "three"} {
		if n := countEffects(t, drv, id, name); n != 1 {
			t.Errorf("step %s: %d effects, want 1", name, n)
		}
	}
}
