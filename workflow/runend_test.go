package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// Tests that every run ends in the state its history explains: a job that
// ends for good ends its run in the same transaction, with a readable
// error, OnFinish staged once, and an awaiting parent counted off once.

type endArgs struct {
	N int `json:"n"`
}

// finishJobs counts the finish callback jobs staged for a run.
func finishJobs(t *testing.T, drv storage.Driver, runID uuid.UUID) int {
	t.Helper()
	return countRows(t, drv, "jobs", "run_id = $1 AND kind = $2", runID, workflow.FinishKind)
}

// requireEnded checks a run ended in state want with an error containing
// errPart, settled once, with no unfinished job left, and that Wait
// returns it.
func requireEnded(t *testing.T, e *workflow.Engine, drv storage.Driver, id uuid.UUID, want acidic.RunState, errPart string) *acidic.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatalf("Wait: %v (the run is stranded)", err)
	}
	if r.State != want || !strings.Contains(r.Error, errPart) {
		t.Fatalf("run %s with error %q; want %s with an error containing %q", r.State, r.Error, want, errPart)
	}
	if r.SettledAt == nil || r.LockedBy != "" || r.FinishedAt == nil {
		t.Errorf("ended run: settled %v, locked by %q, finished %v; want settled, unlocked, finished", r.SettledAt, r.LockedBy, r.FinishedAt)
	}
	waitFor(t, 20*time.Second, "the run's jobs to end", func() (bool, string) {
		var live []*acidic.Job
		for _, j := range liveJobs(t, drv, id) {
			if j.Kind == r.Workflow {
				live = append(live, j)
			}
		}
		return len(live) == 0, describeJobs(live)
	})
	// Counted once every job that could settle the run again has ended.
	if n := finishJobs(t, drv, id); n != 1 {
		t.Errorf("%d finish callbacks staged, want 1", n)
	}
	return r
}

// onFinishCounter is an OnFinish callback that counts its calls per run.
type onFinishCounter struct {
	mu    sync.Mutex
	calls map[uuid.UUID]int
}

func (c *onFinishCounter) fn(ctx context.Context, r *acidic.Run) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[uuid.UUID]int{}
	}
	c.calls[r.ID]++
	return nil
}

func (c *onFinishCounter) get(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

// A step that panics on the job's last attempt fails the run: before, the
// queue recovered the panic without the workflow recording anything, and
// the run went back to pending with no error, for ever.
func TestPanicOnLastAttemptFailsTheRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var finished onFinishCounter
		opts := fastOptions(2)
		opts.OnFinish = finished.fn
		wf := workflow.Define("panics", opts,
			steps.Do("boom", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				panic(fmt.Sprintf("card %d declined by a nil map", sc.Args.N))
			}))
		e := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, e)
		id := enqueue(t, e, "panics", endArgs{N: 7})
		r := requireEnded(t, e, drv, id, acidic.RunFailed, "card 7 declined")
		if !strings.Contains(r.Error, "attempts exhausted (2 of 2)") {
			t.Errorf("run error %q does not say the attempts ran out", r.Error)
		}
		if s := stepLog(t, r, "boom"); s.State != acidic.StepFailed || !strings.Contains(s.Error, "panicked") || s.Attempt != 2 {
			t.Errorf("step log: %s on attempt %d: %q; want failed on attempt 2, saying it panicked", s.State, s.Attempt, s.Error)
		}
		waitFor(t, 10*time.Second, "OnFinish", func() (bool, string) { n := finished.get(id); return n == 1, fmt.Sprint(n) })
	})
}

// A child that panics on its last attempt fails, and its awaiting parent is
// counted off and fails with it, instead of waiting for ever.
func TestChildPanicOnLastAttemptReleasesItsParent(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		child := workflow.Define("panicky-child", fastOptions(1),
			steps.Do("boom", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { panic("child down") }))
		var after atomic.Int32
		parent := workflow.Define("waiting-parent", fastOptions(1),
			steps.AwaitRuns[endArgs, noState]("fan-out", steps.AwaitOptions{}, steps.RunRequest{Workflow: "panicky-child", Args: endArgs{N: 1}}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { after.Add(1); return nil }))
		e := newEngine(t, drv, engineConfig(2), child, parent)
		startEngine(t, e)
		id := enqueue(t, e, "waiting-parent", endArgs{})
		r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, "child") {
			t.Fatalf("parent %s (%q), want failed naming its child", r.State, r.Error)
		}
		if after.Load() != 0 {
			t.Errorf("the parent's next step ran %d times after its child failed", after.Load())
		}
		kids, err := e.List(ctxT(t), acidic.RunFilter{ParentRunID: id})
		if err != nil || len(kids) != 1 || kids[0].State != acidic.RunFailed || !strings.Contains(kids[0].Error, "child down") {
			t.Fatalf("children: %v, %v; want one failed child saying it panicked", kids, err)
		}
	})
}

// A worker killed during its job's last attempt: the rescuer discards the
// job and, in the same transaction, fails the run.
func TestRescueOfLastAttemptFailsTheRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		var finished onFinishCounter
		opts := fastOptions(1)
		opts.OnFinish = finished.fn
		wf := workflow.Define("dies", opts,
			steps.Do("hang", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				once.Do(func() { close(entered) })
				<-release // the worker "dies" here: see below
				return nil
			}))
		cfg := engineConfig(2) // one worker hangs; the other runs OnFinish
		a := newEngine(t, drv, cfg, wf)
		startEngine(t, a)
		t.Cleanup(func() { close(release) }) // runs before a stops
		id := enqueue(t, a, "dies", endArgs{})
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatal("the step never started")
		}
		// The worker died: its heartbeats stopped long ago. Another engine's
		// maintenance rescues the job, its last attempt.
		jobs := jobsOf(t, drv, id, "dies")
		stopHeartbeats(t, drv, jobs[0].ID)
		rcfg := engineConfig(1)
		rcfg.Queue.Queues = map[string]queue.QueueConfig{"elsewhere": {MaxWorkers: 1}}
		rcfg.Queue.RescueAfter = time.Minute
		rescuer := newEngine(t, drv, rcfg, wf)
		// The live worker's heartbeat may hold the row (rescue skips locked
		// rows): try a few passes.
		var res queue.MaintenanceResult
		for range 50 {
			if res = rescuer.Queue().Maintain(ctxT(t)); len(res.Rescued) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(res.Rescued) != 1 || res.Rescued[0].State != acidic.JobDiscarded {
			t.Fatalf("rescued %v, want the run's job discarded", res.Rescued)
		}
		r := requireEnded(t, rescuer, drv, id, acidic.RunFailed, "stopped heartbeating")
		if !strings.Contains(r.Error, "attempts exhausted (1 of 1)") {
			t.Errorf("run error %q does not say the attempts ran out", r.Error)
		}
		waitFor(t, 10*time.Second, "OnFinish", func() (bool, string) { n := finished.get(id); return n == 1, fmt.Sprint(n) })
	})
}

// stopHeartbeats makes a running job look like its worker died an hour ago,
// and keeps it so against the live worker's heartbeats (a trigger turns
// them back an hour).
func stopHeartbeats(t *testing.T, drv storage.Driver, jobID int64) {
	t.Helper()
	if testdb.IsSQLite(drv) { // no trigger functions; an AFTER trigger writes the row again
		execSQL(t, drv, fmt.Sprintf("CREATE TRIGGER freeze_heartbeat AFTER UPDATE ON %s"+
			" WHEN NEW.id = %d AND NEW.state = 'running' AND OLD.state = 'running' AND NEW.attempt = OLD.attempt"+
			" BEGIN UPDATE %[1]s SET heartbeat_at = NEW.heartbeat_at - %[3]d WHERE id = NEW.id; END",
			table(drv, "jobs"), jobID, time.Hour.Microseconds()))
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = $2 WHERE id = $1", jobID, time.Now())
		return
	}
	fn := table(drv, "freeze_heartbeat")
	execSQL(t, drv, "CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "+
		"IF NEW.state = 'running' AND OLD.state = 'running' AND NEW.attempt = OLD.attempt THEN NEW.heartbeat_at := now() - interval '1 hour'; END IF; "+
		"RETURN NEW; END $$")
	execSQL(t, drv, fmt.Sprintf("CREATE TRIGGER freeze_heartbeat BEFORE UPDATE ON %s FOR EACH ROW WHEN (OLD.id = %d) EXECUTE FUNCTION %s()",
		table(drv, "jobs"), jobID, fn))
	execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = now() WHERE id = $1", jobID)
}

// An operator cancelling the job that carries a run (acidic jobs cancel, or
// Queue().Cancel) cancels the run with it.
func TestOperatorCancelOfTheRunsJobCancelsTheRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var finished onFinishCounter
		opts := fastOptions(3)
		opts.OnFinish = finished.fn
		var ran atomic.Int32
		wf := workflow.Define("cancelled-job", opts,
			steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { ran.Add(1); return nil }))
		e := newEngine(t, drv, engineConfig(1), wf) // not started: the job waits
		id := enqueue(t, e, "cancelled-job", endArgs{})
		jobs := jobsOf(t, drv, id, "cancelled-job")
		// An earlier attempt failed: the run's error must still say why it
		// ended, not repeat that attempt's error.
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+` SET attempt = 1, state = 'retryable',
			errors = '[{"attempt": 1, "at": "2026-01-01T00:00:00Z", "error": "card declined"}]' WHERE id = $1`, jobs[0].ID)
		if _, err := e.Queue().Cancel(ctxT(t), jobs[0].ID); err != nil {
			t.Fatal(err)
		}
		startEngine(t, e)
		requireEnded(t, e, drv, id, acidic.RunCancelled, fmt.Sprintf("job %d cancelled by an operator", jobs[0].ID))
		waitFor(t, 10*time.Second, "OnFinish", func() (bool, string) { n := finished.get(id); return n == 1, fmt.Sprint(n) })
		if ran.Load() != 0 {
			t.Errorf("a step ran %d times after its run's job was cancelled", ran.Load())
		}
	})
}

// A client without EndedFunc (a bare queue client) cannot end a job that
// carries a run; it is told to go through the engine, and writes nothing.
func TestBareQueueClientRefusesToCancelARunsJob(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		wf := workflow.Define("bare", fastOptions(3),
			steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
		e := newEngine(t, drv, engineConfig(1), wf)
		id := enqueue(t, e, "bare", endArgs{})
		job := jobsOf(t, drv, id, "bare")[0]
		bare, err := queue.New(drv, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bare.Cancel(ctxT(t), job.ID); !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "workflow") {
			t.Fatalf("bare client's Cancel of a run's job: %v, want queue.ErrInvalid pointing to the engine", err)
		}
		if j := jobsOf(t, drv, id, "bare")[0]; j.State != acidic.JobAvailable {
			t.Errorf("refused cancel left the job %s", j.State)
		}
	})
}

// A run whose workflow no working engine has registered fails once its job
// runs out of attempts, with an error naming the unknown kind.
func TestRunOfAnUnknownWorkflowFails(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ghost := workflow.Define("ghost", workflow.Options{MaxAttempts: 2, Queue: "ghosts"},
			steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
		enqueuer := newEngine(t, drv, engineConfig(1), ghost) // never started
		id := enqueue(t, enqueuer, "ghost", endArgs{})

		other := workflow.Define("other", workflow.Options{}, steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
		cfg := engineConfig(1)
		cfg.Queue.Queues = map[string]queue.QueueConfig{"ghosts": {MaxWorkers: 1}}
		worker := newEngine(t, drv, cfg, other)
		startEngine(t, worker)
		// The unknown kind backs off between attempts: make its retry due.
		waitFor(t, 60*time.Second, "the run to fail", func() (bool, string) {
			_, _ = drv.JobMakeDue(ctxT(t), storage.JobMakeDueParams{Queue: "ghosts"})
			r := getRun(t, worker, id)
			return r.State == acidic.RunFailed, string(r.State)
		})
		r := requireEnded(t, worker, drv, id, acidic.RunFailed, "no worker for job kind")
		if !strings.Contains(r.Error, `"ghost"`) {
			t.Errorf("run error %q does not name the workflow", r.Error)
		}
	})
}

// A halted run rests until Retry: a job delivered for it again (the worker
// died before the halting job's completion was written, or a duplicate)
// does not resume it.
func TestHaltedRunDoesNotResumeByItself(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var next atomic.Int32
		wf := workflow.Define("halting", fastOptions(3),
			steps.Do("ask", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return steps.Halt() }),
			steps.Do("apply", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { next.Add(1); return nil }))
		e := newEngine(t, drv, engineConfig(2), wf)
		startEngine(t, e)
		id := enqueue(t, e, "halting", endArgs{})
		r, err := e.Wait(ctxT(t), id)
		if err != nil || r.State != acidic.RunHalted {
			t.Fatalf("Wait: %v, %v; want the run halted", r, err)
		}
		// Deliver the run's job again, twice: as a redelivery would.
		for range 2 {
			enginetest.DeliverRunJob(ctxT(t), t, e.Queue(), "halting", id, queue.EnqueueOptions{})
		}
		waitJobsFinal(t, drv, id, "halting")
		if r := getRun(t, e, id); r.State != acidic.RunHalted || r.RecoveryPoint != "apply" || next.Load() != 0 {
			t.Fatalf("after redelivered jobs: run %s at %s, apply ran %d times; want halted at apply, not run", r.State, r.RecoveryPoint, next.Load())
		}
		if _, err := e.Retry(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		if r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded || next.Load() != 1 {
			t.Fatalf("after Retry: %s, apply ran %d times; want succeeded once", r.State, next.Load())
		}
	})
}

// Awaited siblings finishing together: each child's last step runs its code
// once. Here the second child's step transaction begins (takes its
// snapshot), then waits until the first child's step has committed, then
// commits. When counting a child off its parent was part of the child's
// SERIALIZABLE step transaction, the second commit updated the parent row
// the first had updated after its snapshot, failed to serialize, and its
// step's code ran again (an outside call made twice). Counting off now runs
// in a READ COMMITTED transaction of its own after the step's commit.
func TestSiblingsFinishingTogetherRunTheirStepOnce(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the race needs a step transaction whose snapshot predates a sibling's commit while that sibling commits; SQLite runs one writer at a time, so the sibling would wait for the step (and the step polls for it).
	drv := testdb.New(t, testdb.Options{})
	var calls [3]atomic.Int32
	child := workflow.Define("sibling", workflow.Options{Queue: "siblings", MaxAttempts: 5},
		steps.Do("last", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
			calls[sc.Args.N].Add(1)
			if sc.Args.N == 1 {
				return nil
			}
			// Begin the transaction now: its snapshot predates the first
			// child's commit.
			if _, err := postgres.PgxTx(sc.Tx()).Exec(ctx, "SELECT 1"); err != nil {
				return err
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				var n int
				err := drv.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table(drv, "runs")+
					" WHERE workflow = 'sibling' AND args->>'n' = '1' AND state = 'succeeded'").Scan(&n)
				if err != nil {
					return err
				}
				if n == 1 {
					return nil
				}
				if time.Now().After(deadline) {
					return errors.New("the first sibling never committed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}))
	var resumed atomic.Int32
	parent := workflow.Define("siblings-parent", fastOptions(3),
		steps.AwaitRuns[endArgs, noState]("fan-out", steps.AwaitOptions{},
			steps.RunRequest{Workflow: "sibling", Args: endArgs{N: 1}},
			steps.RunRequest{Workflow: "sibling", Args: endArgs{N: 2}}),
		steps.Do("after", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { resumed.Add(1); return nil }))
	cfg := engineConfig(2)
	cfg.Queue.Queues["siblings"] = queue.QueueConfig{MaxWorkers: 2}
	e := newEngine(t, drv, cfg, child, parent)
	startEngine(t, e)
	id := enqueue(t, e, "siblings-parent", endArgs{})
	if r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded {
		t.Fatalf("parent %s (%s)", r.State, r.Error)
	}
	for n := 1; n <= 2; n++ {
		if got := calls[n].Load(); got != 1 {
			t.Errorf("child %d's last step ran %d times, want once", n, got)
		}
	}
	if resumed.Load() != 1 {
		t.Errorf("the parent continued %d times, want once", resumed.Load())
	}
	if jobs := jobsOf(t, drv, id, "siblings-parent"); len(jobs) != 2 {
		t.Errorf("parent jobs: %s; want the first and one continuation", describeJobs(jobs))
	}
}

// A child retried after it failed, and finishing again, is not counted off
// its parent a second time: the parent keeps waiting for its other child.
func TestRetriedChildIsCountedOffOnce(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var failA atomic.Bool
		failA.Store(true)
		releaseB := make(chan struct{})
		child := workflow.Define("retried-child", workflow.Options{Queue: "kids", MaxAttempts: 1},
			steps.Do("work", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				if sc.Args.N == 1 && failA.Load() {
					return errors.New("A fails the first time")
				}
				if sc.Args.N == 2 {
					select {
					case <-releaseB:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				return nil
			}))
		var after atomic.Int32
		parent := workflow.Define("patient-parent", fastOptions(1),
			steps.AwaitRuns[endArgs, noState]("fan-out", steps.AwaitOptions{ContinueOnFailure: true},
				steps.RunRequest{Workflow: "retried-child", Args: endArgs{N: 1}},
				steps.RunRequest{Workflow: "retried-child", Args: endArgs{N: 2}}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { after.Add(1); return nil }))
		cfg := engineConfig(2)
		cfg.Queue.Queues["kids"] = queue.QueueConfig{MaxWorkers: 2}
		e := newEngine(t, drv, cfg, child, parent)
		startEngine(t, e)
		t.Cleanup(func() {
			select {
			case <-releaseB:
			default:
				close(releaseB)
			}
		})
		id := enqueue(t, e, "patient-parent", endArgs{})
		var a uuid.UUID
		waitFor(t, 20*time.Second, "child A to fail", func() (bool, string) {
			kids, err := e.List(ctxT(t), acidic.RunFilter{ParentRunID: id})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range kids {
				if argN(t, k) == 1 && k.State == acidic.RunFailed && k.SettledAt != nil {
					a = k.ID
					return true, ""
				}
			}
			return false, fmt.Sprint(len(kids), " children")
		})
		failA.Store(false)
		if _, err := e.Retry(ctxT(t), a); err != nil {
			t.Fatal(err)
		}
		if r := waitRun(t, e, a, acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded {
			t.Fatalf("retried child A: %s (%s)", r.State, r.Error)
		}
		waitJobsFinal(t, drv, a, "retried-child")
		if p := getRun(t, e, id); p.State != acidic.RunAwaiting || p.Awaiting != 1 || after.Load() != 0 {
			t.Fatalf("parent after A's retry finished: %s awaiting %d, next step ran %d times; want still awaiting B", p.State, p.Awaiting, after.Load())
		}
		close(releaseB)
		if r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded || after.Load() != 1 {
			t.Fatalf("parent: %s (%s), next step ran %d times; want succeeded once", r.State, r.Error, after.Load())
		}
	})
}

// A stop whose deadline cuts a step short on the job's last attempt does
// not fail the run: the attempt was the client's to end, not the job's
// failure. The run resumes on another engine at the same step.
func TestStopOnTheLastAttemptDoesNotFailTheRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		entered := make(chan struct{})
		var once sync.Once
		var slow atomic.Bool
		slow.Store(true)
		wf := workflow.Define("deploy-safe", workflow.Options{MaxAttempts: 1},
			steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }),
			steps.Do("long", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				if slow.Load() {
					once.Do(func() { close(entered) })
					<-ctx.Done() // cut short by the stop's deadline
					return ctx.Err()
				}
				return nil
			}))
		a, err := workflow.NewEngine(drv, engineConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Register(wf); err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		id := enqueue(t, a, "deploy-safe", endArgs{})
		select {
		case <-entered:
		case <-time.After(20 * time.Second):
			t.Fatal("the long step never started")
		}
		stopCtx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = a.Stop(stopCtx)
		if r := getRun(t, a, id); r.State.Final() {
			t.Fatalf("after a stop cut the last attempt short: run %s (%s), want it to go on", r.State, r.Error)
		}
		slow.Store(false)
		b := newEngine(t, drv, engineConfig(1), wf)
		startEngine(t, b)
		if r := waitRun(t, b, id, acidic.RunSucceeded, acidic.RunFailed); r.State != acidic.RunSucceeded {
			t.Fatalf("run %s (%s), want it to succeed on another engine", r.State, r.Error)
		}
	})
}

// A step's Cancel ends the run at once, even while a second job carries it
// (after crashes, or a Retry while a job ran): the step is not run again by
// that job to reach the same decision.
func TestStepCancelEndsTheRunWhateverElseCarriesIt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var decided atomic.Int32
		var finished onFinishCounter
		opts := fastOptions(3)
		opts.OnFinish = finished.fn
		wf := workflow.Define("fraud", opts,
			steps.Do("check", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				decided.Add(1)
				return steps.Cancel(errors.New("fraud suspected"))
			}))
		e := newEngine(t, drv, engineConfig(1), wf)
		id := enqueue(t, e, "fraud", endArgs{})
		enginetest.DeliverRunJob(ctxT(t), t, e.Queue(), "fraud", id, queue.EnqueueOptions{ScheduleIn: 200 * time.Millisecond})
		startEngine(t, e)
		r := requireEnded(t, e, drv, id, acidic.RunCancelled, "cancelled by step check: fraud suspected")
		if n := decided.Load(); n != 1 {
			t.Errorf("the cancelling step ran %d times, want once", n)
		}
		waitFor(t, 10*time.Second, "OnFinish", func() (bool, string) { n := finished.get(id); return n == 1, fmt.Sprint(n) })
		_ = r
	})
}

// A bare queue client (no EndedFunc: it cannot end a run with its job)
// working and maintaining the same queue as an engine neither rescues nor
// claims jobs that carry runs: discarding one would strand its run. The
// engine's client rescues it, and ends the run with it.
func TestBareQueueClientLeavesRunJobsToEngines(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		wf := workflow.Define("once", fastOptions(1),
			steps.Do("a", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
		cfg := engineConfig(1)
		cfg.Queue.RescueAfter = time.Minute
		e := newEngine(t, drv, cfg, wf) // not started
		id := enqueue(t, e, "once", endArgs{N: 1})
		second := enqueue(t, e, "once", endArgs{N: 2})

		// A bare client on the same queue fetches nothing of the runs.
		ws := queue.NewWorkers()
		bare, err := queue.New(drv, queue.Config{Workers: ws, RescueAfter: time.Minute, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := bare.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil || res.Total() != 0 {
			t.Fatalf("a bare client drained %+v (%v) of a queue holding only run jobs, want nothing", res, err)
		}
		// The engine's worker claims the first run's job (its last attempt),
		// then dies; the bare client's maintenance leaves it alone.
		jobs, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: queue.DefaultQueue, Max: 1, WorkerID: "dead"})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("fetch: %v %d", err, len(jobs))
		}
		ageHeartbeat(t, drv, jobs[0].ID)
		if res := bare.Maintain(ctx); len(res.Rescued) != 0 {
			t.Fatalf("a bare client rescued %v", res.Rescued)
		}
		// The engine rescues it: its last attempt, so the run fails with it.
		if res := e.Queue().Maintain(ctx); len(res.Rescued) != 1 {
			t.Fatalf("the engine rescued %v, want the dead worker's job", res.Rescued)
		}
		dead := jobs[0].RunID
		if r := getRun(t, e, dead); r.State != acidic.RunFailed || !strings.Contains(r.Error, "stopped heartbeating") {
			t.Fatalf("run of the dead worker: %s (%q), want failed by the rescue", r.State, r.Error)
		}
		other := id
		if dead == id {
			other = second
		}
		if r := getRun(t, e, other); r.State != acidic.RunPending {
			t.Fatalf("the other run: %s, want pending", r.State)
		}
	})
}

// An engine whose Start failed (here: its context had ended) is not
// started: workflows can still be registered, and a later Start works.
func TestFailedStartLeavesTheEngineUnstarted(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		e, err := workflow.NewEngine(drv, engineConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if err := e.Start(done); err == nil {
			t.Fatal("Start with an ended context succeeded")
		}
		wf := workflow.Define("late", workflow.Options{}, steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
		if err := e.Register(wf); err != nil {
			t.Fatalf("Register after a failed Start: %v", err)
		}
		startEngine(t, e)
		id := enqueue(t, e, "late", endArgs{})
		waitSucceeded(t, e, id)
	})
}

// Every way a child run can end for good counts it off its awaiting parent
// once: a panic on its last attempt, a Discard, a step's Cancel, and an
// operator's cancel of its job while its step runs. The parent (which
// continues on failure) resumes once, after the last of them, and each
// child's finish callback is staged once, with the child's reason.
func TestEveryEndOfAChildCountsItOffItsParentOnce(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var finished onFinishCounter
		running := make(chan struct{})
		var once sync.Once
		child := workflow.Define("ending-child", workflow.Options{Queue: "kids", MaxAttempts: 1, OnFinish: finished.fn},
			steps.Do("end", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error {
				switch sc.Args.N {
				case 1:
					panic("nil map")
				case 2:
					return queue.Discard(errors.New("bad card"))
				case 3:
					return steps.Cancel(errors.New("fraud"))
				default:
					once.Do(func() { close(running) })
					<-ctx.Done() // cancelled by the operator
					return ctx.Err()
				}
			}))
		var after atomic.Int32
		reqs := make([]steps.RunRequest, 4)
		for i := range reqs {
			reqs[i] = steps.RunRequest{Workflow: "ending-child", Args: endArgs{N: i + 1}}
		}
		parent := workflow.Define("counting-parent", fastOptions(1),
			steps.AwaitRuns[endArgs, noState]("fan-out", steps.AwaitOptions{ContinueOnFailure: true}, reqs...),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { after.Add(1); return nil }))
		cfg := engineConfig(2)
		cfg.Queue.Queues["kids"] = queue.QueueConfig{MaxWorkers: 4}
		e := newEngine(t, drv, cfg, child, parent)
		startEngine(t, e)
		id := enqueue(t, e, "counting-parent", endArgs{})
		select {
		case <-running:
		case <-time.After(20 * time.Second):
			t.Fatal("child 4 never started")
		}
		kids, err := e.List(ctxT(t), acidic.RunFilter{ParentRunID: id})
		if err != nil || len(kids) != 4 {
			t.Fatalf("children: %v, %v", kids, err)
		}
		for _, k := range kids {
			if argN(t, k) == 4 {
				if _, err := e.Queue().Cancel(ctxT(t), jobsOf(t, drv, k.ID, "ending-child")[0].ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		p := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed)
		if p.State != acidic.RunSucceeded || p.Awaiting != 0 || after.Load() != 1 {
			t.Fatalf("parent %s awaiting %d, next step ran %d times; want succeeded once", p.State, p.Awaiting, after.Load())
		}
		want := map[int]struct {
			state acidic.RunState
			err   string
		}{
			1: {acidic.RunFailed, "panicked"},
			2: {acidic.RunFailed, "bad card"},
			3: {acidic.RunCancelled, "cancelled by step end: fraud"},
			4: {acidic.RunCancelled, "cancelled by an operator"},
		}
		for _, k := range kids {
			r := requireEnded(t, e, drv, k.ID, want[argN(t, k)].state, want[argN(t, k)].err)
			if r.ParentRunID != id {
				t.Errorf("child %s lost its parent", r.ID)
			}
		}
		waitFor(t, 10*time.Second, "every child's OnFinish", func() (bool, string) {
			for _, k := range kids {
				if finished.get(k.ID) != 1 {
					return false, fmt.Sprint(k.ID, finished.get(k.ID))
				}
			}
			return true, ""
		})
	})
}
