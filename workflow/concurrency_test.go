package workflow_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
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
			enginetest.DeliverRunJob(ctx, t, q, "contended", ids[i], queue.EnqueueOptions{})
		}
	}
	// Start both only now, so the jobs of one run are fetched side by side.
	startEngine(t, a)
	startEngine(t, b)

	var snoozed int
	for _, id := range ids {
		r := waitRun(t, a, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
		if r.State != acidic.RunSucceeded {
			t.Fatalf("run %s: %s (%s)", id, r.State, r.Error)
		}
		// Every job of the run ends, and none failed an attempt.
		for _, j := range waitJobsFinal(t, drv, id, "contended") {
			if j.State != acidic.JobCompleted || len(j.Errors) != 0 {
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
			if s := stepLog(t, r, name); s.State != acidic.StepSucceeded || s.Executions != 1 {
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

// A step that runs long (here: until released, ignoring its context) keeps
// the run's lease as long as its worker lives, however long that is: a
// second job delivered for the run meanwhile (after crashes, two jobs can
// carry one run) waits without running anything, instead of taking the lease
// by its age and running the step's outside calls again (the livelock of
// two workers taking a lease from each other for ever). When the step
// returns, it commits; the second job then finds the run finished.
func TestSlowStepKeepsLeaseWhileItsWorkerLives(t *testing.T) {
	t.Parallel()
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	// No primary key here: a second execution of step two would show as a second row.
	execSQL(t, drv, "CREATE TABLE "+table(drv, "charges")+" (run_id uuid NOT NULL, engine text NOT NULL)")

	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	define := func(engine string) *workflow.Workflow[contendedArgs, noState] {
		return workflow.Define("takeover", fastOptions(5),
			steps.Do("one", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "one", 0)
			}),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
				// The outside call: counted however the step ends.
				if calls.Add(1) == 1 {
					close(entered)
					<-release // a long call without a deadline
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
	a := newEngine(t, drv, cfgA, define("A"))
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
	cfgB.LockedRetry = 20 * time.Millisecond
	b := newEngine(t, drv, cfgB, define("B"))
	startEngine(t, b)
	dup := enginetest.DeliverRunJob(ctxT(t), t, b.Queue(), "takeover", id, queue.EnqueueOptions{})
	// B's job waits for the lease through several heartbeats of A's and
	// many of its own lease attempts; it must not run step two.
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := b.Queue().Get(ctxT(t), dup.ID)
		if err != nil {
			t.Fatal(err)
		}
		if snoozes(j) >= 5 && time.Since(j.CreatedAt) > 3*cfgA.Queue.HeartbeatInterval {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's job never waited for the lease: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("step two's outside call ran %d times while A held the lease, want 1", n)
	}
	if r := getRun(t, a, id); r.State != acidic.RunRunning || r.RecoveryPoint != "two" {
		t.Fatalf("run while A works: %s at %s (%s)", r.State, r.RecoveryPoint, r.Error)
	}

	close(release)
	r := waitRun(t, a, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
	if r.State != acidic.RunSucceeded {
		t.Fatalf("run %s (%s), want A to finish it", r.State, r.Error)
	}
	waitJobsFinal(t, drv, id, "takeover")
	if n := countRows(t, drv, "charges", "run_id = $1 AND engine = 'A'", id); n != 1 {
		t.Errorf("%d charges by A, want 1 (%d by B)", n, countRows(t, drv, "charges", "run_id = $1 AND engine = 'B'", id))
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("step two's outside call ran %d times, want 1", n)
	}
	if s := stepLog(t, r, "two"); s.Executions != 1 || s.State != acidic.StepSucceeded {
		t.Errorf("step two log: %s, %d executions; want succeeded once", s.State, s.Executions)
	}
	for _, name := range []string{"one", "three"} {
		if n := countEffects(t, drv, id, name); n != 1 {
			t.Errorf("step %s: %d effects, want 1", name, n)
		}
	}
}

// snoozes is how often a job was snoozed (its meta's count).
func snoozes(j *acidic.Job) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(j.Meta, &m)
	return m.Snoozes
}
