package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
		OnFinish:    func(context.Context, *workflow.Run) error { return nil },
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

// TestLockLeaseTakeover: engine A's workers hang inside step two of N runs
// (after writing the step's effect, in the step's transaction) past
// LockTimeout (300ms). Engine B gets one more job per run, takes the runs'
// leases over and executes step two again; its effect waits on A's
// uncommitted row. When A's workers resume, their step transactions cannot
// commit (the lease is B's), B's commit goes through, and each run succeeds
// once with each effect exactly once.
func TestLockLeaseTakeover(t *testing.T) {
	started := time.Now()
	n := pick(3, 10)
	const lockTimeout = 300 * time.Millisecond
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
				RescueAfter:         time.Hour, // A lives: only the lease expires
				MaintenanceInterval: time.Hour,
			},
			LockTimeout: lockTimeout,
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

	a, aDrv, aLog := newLeaseEngine("A", n, true)
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

	// One worker per run: each of B's executions of step two waits on A's
	// uncommitted effect.
	b, bDrv, bLog := newLeaseEngine("B", n+1, false)
	t.Cleanup(release)
	for _, id := range ids {
		if _, err := b.Queue().Enqueue(ctx, leaseName, json.RawMessage("{}"), queue.EnqueueOptions{}.ForRun(id)); err != nil {
			t.Fatal(err)
		}
	}
	// B takes each run over once A's lease is older than LockTimeout, and
	// starts step two, which waits on A's uncommitted effect.
	ok, saw := waitUntil(30*time.Second, 10*time.Millisecond, func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.second) == n, fmt.Sprintf("B started step two of %d of %d runs", len(h.second), n)
	})
	if !ok {
		t.Fatalf("B did not take the runs over: %s", saw)
	}
	// The takeover does not finish while A's transaction holds the effect.
	for _, id := range ids {
		if r, err := b.Get(ctx, id); err != nil || r.State.Final() {
			t.Errorf("run %s finished (%v) before A's hung step ended", id, err)
		}
	}

	release()
	for _, id := range ids {
		r, err := b.Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait for run %s: %v", id, err)
		}
		if r.State != storage.RunSucceeded {
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
		if r.State != storage.RunSucceeded {
			lost++
		}
		for _, s := range r.Steps {
			if s.State != storage.StepSucceeded || s.Executions != 1 {
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
		// Step two's effect is B's: A's transaction did not commit.
		var actor string
		if err := admin.QueryRow(ctx, "SELECT actor FROM "+qualify(schema, "effects")+" WHERE run_id = $1 AND step = 'two'", id).Scan(&actor); err != nil {
			t.Fatal(err)
		}
		if actor != "B" {
			t.Errorf("run %s: step two's committed effect is %s's, want B's (the engine holding the lease)", id, actor)
		}
		// The run finished once: one finish callback job was staged.
		if c := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "jobs")+" WHERE run_id = $1 AND kind = $2", id, workflow.FinishKind); c != 1 {
			t.Errorf("run %s: %d finish callbacks staged, want 1 (the run finished once)", id, c)
		}
	}
	// A never runs step two again after it lost the lease: the engine checks
	// the lease before re-running a step after a serialization failure. So
	// every execution of A's is the hung one, and none hit a committed effect.
	lateA := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "dup_events")+" WHERE actor = 'A'")
	duplicates += int(queryInt(t, admin, "SELECT count(DISTINCT (run_id, step, item)) FROM "+qualify(schema, "dup_events")))
	execA := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "executions")+" WHERE actor = 'A' AND step = 'two'")
	t.Logf("reliability: scenario=lock-lease hung_runs=%d a_step_two_executions=%d a_hit_committed_effect=%d a_lease_lost=%d b_lease_waits=%d",
		n, execA, lateA, aLog.count("workflow: lost the run's lease; step rolled back"), bLog.count("workflow: run locked by another worker; retrying later"))
	if execA != int64(n) {
		t.Errorf("A ran step two %d times for %d runs, want once per run: it ran a step's code again after losing the run's lease", execA, n)
	}
	if lateA != 0 {
		t.Errorf("A hit step effects B had committed %d times, want 0", lateA)
	}
	report(t, counts{scenario: "lock-lease", runs: n, txRetries: aDrv.Stats().TxRetries + bDrv.Stats().TxRetries, duplicates: duplicates, lost: lost}, started)
}
