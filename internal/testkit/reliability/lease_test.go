package reliability

import (
	"context"
	"fmt"
	"sync"
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

const leaseName = "lease"

// hangs makes the first execution of step "two" of each run, on the engine
// that hangs, write its effect and then block (ignoring its context, like a
// call without a deadline) until released.
type hangs struct {
	mu      sync.Mutex
	seen    map[uuid.UUID]bool
	entered chan uuid.UUID
	release chan struct{}
	// second counts executions of step two by the other engine, per run.
	second map[uuid.UUID]int
}

func leaseWorkflow(ef *effector, h *hangs, hang bool) workflow.Definition {
	simple := func(name string) steps.Step[struct{}, struct{}] {
		return steps.Do(name, func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
			return ef.effect(ctx, sc.Tx(), sc.RunID(), name, 0)
		})
	}
	return workflow.Define(leaseName, workflow.Options{
		MaxAttempts: 50,
		Backoff:     func(int, error) time.Duration { return 20 * time.Millisecond },
		OnFinish:    func(context.Context, *acidic.Run) error { return nil },
	},
		simple("one"),
		steps.Do("two", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
			defer ef.execution(ctx, sc.RunID(), "two", 0)()
			h.mu.Lock()
			first := hang && !h.seen[sc.RunID()]
			if hang {
				h.seen[sc.RunID()] = true
			} else {
				h.second[sc.RunID()]++
			}
			h.mu.Unlock()
			// The effect first: the hung transaction holds its row, so the
			// engine taking over waits for it to end.
			if err := ef.effect(ctx, sc.Tx(), sc.RunID(), "two", 0); err != nil {
				return err
			}
			if first {
				h.entered <- sc.RunID()
				<-h.release
			}
			return nil
		}),
		simple("three"),
	)
}

// TestLongStepKeepsItsLease: engine A's workers hang inside step two of N
// runs (after writing the step's effect, in the step's transaction) for many
// heartbeat intervals, alive. Engine B gets one more job per run (after
// crashes, two jobs can carry one run) and tries the runs' leases again and
// again. A lease lives as long as its holding attempt runs, so B never takes
// a run over and never runs step two (no livelock of two workers taking the
// lease from each other, each re-running the step's outside calls). When
// A's workers resume, their steps commit, B's jobs find the runs finished,
// and each run succeeds once with each effect exactly once.
func TestLongStepKeepsItsLease(t *testing.T) {
	started := time.Now()
	n := pick(3, 10)
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	admin, schema := drv.Pool(), drv.Schema()
	createScenarioTables(t, admin, schema)
	h := &hangs{seen: map[uuid.UUID]bool{}, entered: make(chan uuid.UUID, n), release: make(chan struct{}), second: map[uuid.UUID]int{}}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(h.release) }) }

	newLeaseEngine := func(name string, workers int, hang bool) (*workflow.Engine, *postgres.Driver, *quietLogger) {
		pool := newPool(t, poolConfig(t, testURL(), "acidic-reliability-lease", int32(2*workers+4)))
		d := postgres.New(pool, postgres.Options{Schema: schema})
		logger, counter := newQuietLogger(nil)
		e, err := workflow.NewEngine(d, workflow.Config{
			Queue: queue.Config{
				Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}},
				PollInterval:        20 * time.Millisecond,
				HeartbeatInterval:   50 * time.Millisecond,
				RescueAfter:         time.Hour, // A lives
				MaintenanceInterval: time.Hour,
			},
			LockedRetry: 20 * time.Millisecond,
			Logger:      logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Register(leaseWorkflow(&effector{schema: schema, side: admin, actor: name}, h, hang)); err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = e.Stop(ctx)
		})
		return e, d, counter
	}

	a, aDrv, _ := newLeaseEngine("A", n, true)
	// Let A's workers go if the test fails early: registered after A's
	// engine and pool, so it runs before they stop and close (a pool does
	// not close while a hung worker holds a connection).
	t.Cleanup(release)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		res, err := a.Enqueue(ctx, leaseName, struct{}{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.Run.ID
	}
	for i := range n {
		select {
		case <-h.entered:
		case <-time.After(30 * time.Second):
			t.Fatalf("engine A's workers reached step two of %d of %d runs", i, n)
		}
	}

	// One worker per run: B is free to run step two of every run, if it
	// could take the leases.
	b, bDrv, bLog := newLeaseEngine("B", n+1, false)
	t.Cleanup(release)
	for _, id := range ids {
		enginetest.DeliverRunJob(ctx, t, b.Queue(), leaseName, id, queue.EnqueueOptions{})
	}
	// B tries the leases many times over many of A's heartbeats.
	ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		waits := bLog.count("workflow: run locked by another worker; retrying later")
		return waits >= 10*n && time.Since(started) > time.Second, fmt.Sprintf("B waited for a lease %d times", waits)
	})
	if !ok {
		t.Fatalf("B's jobs did not wait for the leases: %s", saw)
	}
	h.mu.Lock()
	took := len(h.second)
	h.mu.Unlock()
	if took != 0 {
		t.Fatalf("B ran step two of %d runs whose leases A's live attempts held", took)
	}
	for _, id := range ids {
		if r, err := b.Get(ctx, id); err != nil || r.State != acidic.RunRunning || r.RecoveryPoint != "two" {
			t.Errorf("run %s while A works: %v, %v; want running at two", id, r, err)
		}
	}

	release()
	for _, id := range ids {
		r, err := b.Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait for run %s: %v", id, err)
		}
		if r.State != acidic.RunSucceeded {
			t.Errorf("run %s: %s at %s (%s)", id, r.State, r.RecoveryPoint, r.Error)
		}
	}
	// Every job of the runs ends (A's jobs find the runs finished).
	ok, saw = waitUntil(30*time.Second, 20*time.Millisecond, func() (bool, string) {
		live := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "jobs")+" WHERE run_id = ANY($1) AND state NOT IN ('completed', 'cancelled', 'discarded')", ids)
		return live == 0, fmt.Sprintf("%d jobs of the runs not finished", live)
	})
	if !ok {
		t.Errorf("%s", saw)
	}

	duplicates, lost := 0, 0
	for _, id := range ids {
		r, err := b.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != acidic.RunSucceeded {
			lost++
		}
		for _, s := range r.Steps {
			if s.State != acidic.StepSucceeded || s.Executions != 1 {
				t.Errorf("run %s step %s: log says %s after %d executions, want succeeded once", id, s.Name, s.State, s.Executions)
			}
		}
		for _, step := range []string{"one", "two", "three"} {
			if c := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "effects")+" WHERE run_id = $1 AND step = $2", id, step); c != 1 {
				t.Errorf("run %s step %s: %d effects, want 1", id, step, c)
				if c == 0 {
					lost++
				}
			}
		}
		// Step two's effect is A's: the lease stayed with A's live attempt.
		var actor string
		if err := admin.QueryRow(ctx, "SELECT actor FROM "+qualify(schema, "effects")+" WHERE run_id = $1 AND step = 'two'", id).Scan(&actor); err != nil {
			t.Fatal(err)
		}
		if actor != "A" {
			t.Errorf("run %s: step two's committed effect is %s's, want A's (the engine holding the lease)", id, actor)
		}
		// The run finished once: one finish callback job was staged.
		if c := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "jobs")+" WHERE run_id = $1 AND kind = $2", id, workflow.FinishKind); c != 1 {
			t.Errorf("run %s: %d finish callbacks staged, want 1 (the run finished once)", id, c)
		}
	}
	// Step two ran once per run, on A; B never ran it.
	duplicates += int(queryInt(t, admin, "SELECT count(DISTINCT (run_id, step, item)) FROM "+qualify(schema, "dup_events")))
	execA := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "executions")+" WHERE actor = 'A' AND step = 'two'")
	execB := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "executions")+" WHERE actor = 'B' AND step = 'two'")
	t.Logf("reliability: scenario=lock-lease hung_runs=%d a_step_two_executions=%d b_step_two_executions=%d b_lease_waits=%d",
		n, execA, execB, bLog.count("workflow: run locked by another worker; retrying later"))
	if execA != int64(n) || execB != 0 {
		t.Errorf("step two ran %d times on A and %d on B for %d runs, want once per run on A", execA, execB, n)
	}
	report(t, counts{scenario: "lock-lease", runs: n, txRetries: aDrv.Stats().TxRetries + bDrv.Stats().TxRetries, duplicates: duplicates, lost: lost}, started)
}
