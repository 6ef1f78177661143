package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

const contendedName = "contended"

type contendedArgs struct {
	K int `json:"k"`
}

// contendedWorkflow has three steps; each records its execution (outside
// its transaction, on the database clock), its effect, and increments one
// shared counter row, so concurrent steps of different runs conflict and
// SERIALIZABLE makes them retry.
func contendedWorkflow(ef *effector) workflow.Definition {
	step := func(name string) steps.Step[contendedArgs, struct{}] {
		return steps.Do(name, func(ctx context.Context, sc *steps.Context[contendedArgs, struct{}]) error {
			defer ef.execution(ctx, sc.RunID(), name, 0)()
			nap(ctx, ef.sleep)
			if err := ef.effect(ctx, sc.Tx(), sc.RunID(), name, 0); err != nil {
				return err
			}
			if _, err := postgres.PgxTx(sc.Tx()).Exec(ctx, "UPDATE "+qualify(ef.schema, "tally")+" SET n = n + 1 WHERE id = 1"); err != nil {
				return err
			}
			nap(ctx, ef.sleep/2)
			return nil
		})
	}
	return workflow.Define(contendedName, workflow.Options{
		Key:         run.ByArgs(),
		MaxAttempts: 500,
		Backoff:     func(int, error) time.Duration { return 10 * time.Millisecond },
	}, step("a"), step("b"), step("c"))
}

// TestContention: 32 goroutines make 1,000 enqueues onto 10 idempotency
// keys (half derived by run.ByArgs, half passed as EnqueueOptions.Key); then
// 32 workers on two engines work them, with extra jobs per run so several
// workers contend for each run. Each key has exactly one run, every other
// enqueue returned it as a duplicate, no two executions of steps of one run
// overlap in time, and the serialization failures the shared counter causes
// are retried (and counted).
func TestContention(t *testing.T) {
	started := time.Now()
	const keys, goroutines, extraJobs = 10, 32, 3
	enqueues := pick(1000, 5000)
	drv := testdb.New(t, testdb.Options{MaxConns: 8})
	admin, schema := drv.Pool(), drv.Schema()
	createScenarioTables(t, admin, schema)
	side := newPool(t, poolConfig(t, testURL(), "acidic-reliability-side", 8))
	ef := &effector{schema: schema, side: side, sleep: 4 * time.Millisecond}

	var engines []*workflow.Engine
	var drivers []*postgres.Driver
	for i := range 2 {
		pool := newPool(t, poolConfig(t, testURL(), "acidic-reliability-contention", 20))
		d := postgres.New(pool, postgres.Options{Schema: schema})
		logger, _ := newQuietLogger(nil)
		e, err := workflow.NewEngine(d, workflow.Config{
			Queue: queue.Config{
				Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: 16}},
				PollInterval:        50 * time.Millisecond,
				HeartbeatInterval:   100 * time.Millisecond,
				RescueAfter:         10 * time.Second,
				MaintenanceInterval: 500 * time.Millisecond,
			},
			LockedRetry: 10 * time.Millisecond,
			Logger:      logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		actor := *ef
		actor.actor = fmt.Sprintf("engine-%d", i)
		if err := e.Register(contendedWorkflow(&actor)); err != nil {
			t.Fatal(err)
		}
		engines, drivers = append(engines, e), append(drivers, d)
	}

	// The key run.ByArgs derives, passed explicitly by half the enqueues.
	explicitKey := func(k int) string {
		raw, _ := json.Marshal(contendedArgs{K: k})
		key, err := run.ByArgs().Key(contendedName, raw, uuid.Nil)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	type result struct {
		key int
		id  uuid.UUID
		dup bool
		err error
	}
	results := make([]result, enqueues)
	ctx, cancel := context.WithTimeout(context.Background(), pick(2*time.Minute, 10*time.Minute))
	defer cancel()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < enqueues; i += goroutines {
				k := i % keys
				opts := workflow.EnqueueOptions{}
				if i%2 == 1 {
					opts.Key = explicitKey(k)
				}
				res, err := engines[i%2].Enqueue(ctx, contendedName, contendedArgs{K: k}, opts)
				results[i] = result{key: k, err: err}
				if err == nil {
					results[i].id, results[i].dup = res.Run.ID, res.Duplicate
				}
			}
		}()
	}
	wg.Wait()

	byKey := map[int]uuid.UUID{}
	created := map[int]int{}
	var enqueueErrs []string
	for _, r := range results {
		if r.err != nil {
			enqueueErrs = append(enqueueErrs, r.err.Error())
			continue
		}
		if !r.dup {
			created[r.key]++
		}
		if id, ok := byKey[r.key]; ok && id != r.id {
			t.Errorf("key %d: enqueues returned runs %s and %s", r.key, id, r.id)
		}
		byKey[r.key] = r.id
	}
	if len(enqueueErrs) > 0 {
		t.Errorf("%d enqueues failed, e.g. %s", len(enqueueErrs), enqueueErrs[0])
	}
	for k := range keys {
		if created[k] != 1 {
			t.Errorf("key %d: %d enqueues created a run, want exactly 1 (the others duplicates)", k, created[k])
		}
	}

	// More jobs per run: several workers now try to execute each run.
	var ids []uuid.UUID
	for k := range keys {
		id := byKey[k]
		ids = append(ids, id)
		for j := range extraJobs {
			enginetest.DeliverRunJob(ctx, t, engines[j%2].Queue(), contendedName, id, queue.EnqueueOptions{})
		}
	}

	// Start both engines only now, so they fetch the jobs of each run side
	// by side and contend for the runs' leases.
	for _, e := range engines {
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = e.Stop(ctx)
		})
	}

	for _, id := range ids {
		r, err := engines[0].Wait(ctx, id)
		if err != nil {
			t.Fatalf("wait for run %s: %v", id, err)
		}
		if r.State != acidic.RunSucceeded {
			t.Errorf("run %s: %s at %s (%s)", id, r.State, r.RecoveryPoint, r.Error)
		}
	}

	// One run per key in the table, whatever the enqueues returned.
	runsInTable := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "runs")+" WHERE workflow = $1", contendedName)
	if runsInTable != keys {
		t.Errorf("%d runs in the table for %d keys", runsInTable, keys)
	}
	lost := int(queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "runs")+" WHERE workflow = $1 AND state <> 'succeeded'", contendedName))
	lost += keys - len(byKey)
	effects := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "effects"))
	tally := queryInt(t, admin, "SELECT n FROM "+qualify(schema, "tally")+" WHERE id = 1")
	if effects != keys*3 || tally != effects {
		t.Errorf("%d effects and a counter of %d, want %d and %d", effects, tally, keys*3, keys*3)
	}
	dups := int(queryInt(t, admin, "SELECT count(DISTINCT (run_id, step, item)) FROM "+qualify(schema, "dup_events")))
	dups += int(max(runsInTable-keys, 0))

	// No two executions of steps of one run overlap in time.
	rows, err := admin.Query(ctx, "SELECT x.run_id, x.step, x.actor, x.started_at, x.finished_at, y.step, y.actor, y.started_at, y.finished_at"+
		" FROM "+qualify(schema, "executions")+" x JOIN "+qualify(schema, "executions")+" y"+
		" ON x.run_id = y.run_id AND x.id < y.id"+
		" AND x.started_at < coalesce(y.finished_at, 'infinity') AND y.started_at < coalesce(x.finished_at, 'infinity')")
	if err != nil {
		t.Fatal(err)
	}
	overlaps := 0
	var b strings.Builder
	for rows.Next() {
		var id uuid.UUID
		var xs, xa, ys, ya string
		var xb, yb time.Time
		var xe, ye *time.Time
		if err := rows.Scan(&id, &xs, &xa, &xb, &xe, &ys, &ya, &yb, &ye); err != nil {
			t.Fatal(err)
		}
		overlaps++
		if overlaps <= 5 {
			fmt.Fprintf(&b, "\n  run %s: %s on %s from %s overlaps %s on %s from %s", id, xs, xa, xb.Format(time.StampMicro), ys, ya, yb.Format(time.StampMicro))
		}
	}
	rows.Close()
	if overlaps > 0 {
		t.Errorf("%d pairs of step executions of one run overlapped:%s", overlaps, b.String())
	}
	executions := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "executions"))
	workers := queryInt(t, admin, "SELECT count(DISTINCT actor) FROM "+qualify(schema, "executions"))
	waits := queryInt(t, admin, "SELECT coalesce(sum((meta->>'snoozes')::int), 0) FROM "+qualify(schema, "jobs"))
	if waits == 0 {
		t.Errorf("no contention: steps ran on %d engines, and no job waited for a run's lease", workers)
	}

	var retries int64
	for _, d := range drivers {
		retries += d.Stats().TxRetries
	}
	if retries == 0 {
		t.Errorf("no serialization failure was retried: the shared counter should make concurrent steps conflict")
	}
	t.Logf("reliability: scenario=contention enqueues=%d keys=%d step_executions=%d engines_ran_steps=%d lease_waits=%d overlaps=%d", enqueues, keys, executions, workers, waits, overlaps)
	report(t, counts{scenario: "contention", runs: len(byKey), txRetries: retries, duplicates: dups, lost: lost}, started)
}
