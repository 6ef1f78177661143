package reliability

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// TestStepFailingDuringOutageResumesPromptly: a step fails because the
// database became unreachable (every connection cut, new ones refused, for
// 300ms), so the engine cannot record the failure or release the run's
// lease either. Once the database is back, the job's retry must resume the
// run within moments, as after any failed attempt: the attempt's end frees
// the lease it held.
func TestStepFailingDuringOutageResumesPromptly(t *testing.T) {
	started := time.Now()
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	admin, schema := drv.Pool(), drv.Schema()
	createScenarioTables(t, admin, schema)
	proxy := startTestProxy(t, 0)

	var once sync.Once
	back := make(chan time.Time, 1)
	define := func(ef *effector, outage bool) workflow.Definition {
		effect := func(name string) steps.Step[struct{}, struct{}] {
			return steps.Do(name, func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				return ef.effect(ctx, sc.Tx(), sc.RunID(), name, 0)
			})
		}
		return workflow.Define("outage", workflow.Options{
			MaxAttempts: 20,
			Backoff:     func(int, error) time.Duration { return 20 * time.Millisecond },
		},
			effect("one"),
			steps.Do("two", func(ctx context.Context, sc *steps.Context[struct{}, struct{}]) error {
				failed := false
				if outage {
					once.Do(func() {
						failed = true
						end := proxy.outage()
						go func() {
							time.Sleep(300 * time.Millisecond)
							end()
							back <- time.Now()
						}()
					})
				}
				if err := ef.effect(ctx, sc.Tx(), sc.RunID(), "two", 0); err != nil {
					return err
				}
				if failed {
					return errors.New("the database went away during the step")
				}
				return nil
			}),
			effect("three"),
		)
	}

	cfg := poolConfig(t, testURL(), "acidic-reliability-outage", 8)
	proxy.route(cfg)
	pool := newPool(t, cfg)
	engDrv := postgres.New(pool, postgres.Options{Schema: schema})
	logger, counter := newQuietLogger(nil)
	ecfg := resilientEngineConfig(2)
	ecfg.Logger = logger
	eng, err := workflow.NewEngine(engDrv, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(define(&effector{schema: schema, side: admin, actor: "engine"}, true)); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})

	// Enqueue and watch through a direct connection.
	watcher, err := workflow.NewEngine(drv, workflow.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Register(define(&effector{schema: schema, side: admin, actor: "watcher"}, false)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := watcher.Enqueue(ctx, "outage", struct{}{}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Run.ID

	var upAt time.Time
	select {
	case upAt = <-back:
	case <-time.After(30 * time.Second):
		t.Fatal("the step never caused the outage")
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 10*time.Second)
	r, err := watcher.Wait(waitCtx, id)
	waitCancel()
	resumed := time.Since(upAt)
	lost := 0
	if err != nil || r.State != acidic.RunSucceeded {
		lost = 1
		var lockedBy string
		var lockedFor time.Duration
		var job string
		_ = admin.QueryRow(ctx, "SELECT coalesce(r.locked_by, ''), coalesce(now() - r.locked_at, '0'),"+
			" coalesce((SELECT string_agg(j.state || ' attempt ' || j.attempt, ', ') FROM "+qualify(schema, "jobs")+" j WHERE j.run_id = r.id), '')"+
			" FROM "+qualify(schema, "runs")+" r WHERE r.id = $1", id).Scan(&lockedBy, &lockedFor, &job)
		t.Errorf("run %s still %s at %s %s after the database came back (error %v): its lease is still held (locked_by %q for %s) "+
			"by the attempt whose failure could not be recorded, so the retry (job: %s) cannot take it; "+
			"engine logged %d×%q and %d×%q",
			id, r.State, r.RecoveryPoint, resumed.Round(time.Millisecond), err, lockedBy, lockedFor.Round(time.Millisecond), job,
			counter.count("workflow: could not record step failure"), "workflow: could not record step failure",
			counter.count("workflow: run locked by another worker; retrying later"), "workflow: run locked by another worker; retrying later")
	}
	for _, step := range []string{"one", "two", "three"} {
		if n := queryInt(t, admin, "SELECT count(*) FROM "+qualify(schema, "effects")+" WHERE run_id = $1 AND step = $2", id, step); n != 1 && lost == 0 {
			t.Errorf("step %s: %d effects, want 1", step, n)
		}
	}
	dups := int(queryInt(t, admin, "SELECT count(DISTINCT (run_id, step, item)) FROM "+qualify(schema, "dup_events")))
	t.Logf("reliability: scenario=outage-during-failure resumed_after=%s", resumed.Round(time.Millisecond))
	report(t, counts{scenario: "outage-during-failure", runs: 1, restarts: 1, txRetries: engDrv.Stats().TxRetries, duplicates: dups, lost: lost}, started)
}
