package workflow_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type contendedArgs struct {
	N int `json:"n"`
}

// execution is one execution of a step's code, committed or not.
type execution struct {
	runID             uuid.UUID
	step, engine      string
	started, finished time.Time
}

// executions records every execution of a step's code, outside the step's
// transaction (in memory: both engines run in the test's process).
type executions struct {
	mu  sync.Mutex
	all []execution
}

func (x *executions) record(runID uuid.UUID, step, engine string, started, finished time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.all = append(x.all, execution{runID, step, engine, started, finished})
}

// overlaps returns the pairs of executions of one run that overlapped in time.
func (x *executions) overlaps() [][2]execution {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out [][2]execution
	for i, a := range x.all {
		for _, b := range x.all[i+1:] {
			if a.runID == b.runID && a.started.Before(b.finished) && b.started.Before(a.finished) {
				out = append(out, [2]execution{a, b})
			}
		}
	}
	return out
}

// engines counts the engines that executed steps.
func (x *executions) engines() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range x.all {
		seen[e.engine] = true
	}
	return len(seen)
}

// Two engines work the same runs: extra jobs for each run make both try to
// execute it at once. The run's lease must serialize them.
func TestTwoEnginesNeverRunOneRunConcurrently(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{MaxConns: 20}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		var execs executions

		define := func(engine string) *workflow.Workflow[contendedArgs, noState] {
			step := func(name string) steps.Step[contendedArgs, noState] {
				return steps.Do(name, func(ctx context.Context, sc *steps.Context[contendedArgs, noState]) error {
					started := time.Now()
					if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), name, 0); err != nil {
						return err
					}
					time.Sleep(time.Duration(10+sc.Args.N%3*5) * time.Millisecond)
					execs.record(sc.RunID(), name, engine, started, time.Now())
					return nil
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

		for _, o := range execs.overlaps() {
			x, y := o[0], o[1]
			t.Errorf("run %s: step %s on %s [%s, %s] overlaps step %s on %s [%s, %s]", x.runID,
				x.step, x.engine, x.started.Format(time.StampMicro), x.finished.Format(time.StampMicro),
				y.step, y.engine, y.started.Format(time.StampMicro), y.finished.Format(time.StampMicro))
		}

		// The test only means something if the engines did contend.
		engines := execs.engines()
		if engines != 2 || snoozed == 0 {
			t.Errorf("no contention: steps ran on %d engines, %d jobs waited for a lease", engines, snoozed)
		}
		t.Logf("%d executions recorded, %d lease waits", len(execs.all), snoozed)
	})
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
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
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
					return testdb.TxExec(ctx, sc.Tx(), "INSERT INTO "+table(drv, "charges")+" (run_id, engine) VALUES ($1, $2)", sc.RunID(), engine)
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
	})
}

// snoozes is how often a job was snoozed (its meta's count).
func snoozes(j *acidic.Job) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(j.Meta, &m)
	return m.Snoozes
}
