package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// resilientEngineConfig is an engine config for scenarios where the
// database goes away: short polls and heartbeats, rescue after 3s.
func resilientEngineConfig(workers int) workflow.Config {
	return workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{queue.DefaultQueue: {MaxWorkers: workers}},
			PollInterval:        50 * time.Millisecond,
			HeartbeatInterval:   100 * time.Millisecond,
			RescueAfter:         3 * time.Second,
			MaintenanceInterval: 200 * time.Millisecond,
			LeaderLease:         time.Second,
		},
		LockedRetry: 50 * time.Millisecond,
	}
}

// engineSet is the engines of a scenario, each on its own pool and driver.
type engineSet struct {
	engines []*workflow.Engine
	drivers []*postgres.Driver
	logs    []*quietLogger
}

// startEngines starts count engines on url, schema, with application name
// app on their pools, working the chaos workflows; they are stopped when
// the test ends.
func startEngines(t *testing.T, url, schema, app string, count, workers int, ef *effector, cfgOf func(int) workflow.Config, route func(*pgxpool.Config)) *engineSet {
	t.Helper()
	set := &engineSet{}
	for i := range count {
		pcfg := poolConfig(t, url, app, int32(2*workers+4))
		if route != nil {
			route(pcfg)
		}
		pool := newPool(t, pcfg)
		drv := postgres.New(pool, postgres.Options{Schema: schema})
		logger, counter := newQuietLogger(nil)
		cfg := cfgOf(workers)
		cfg.Logger = logger
		e, err := workflow.NewEngine(drv, cfg)
		if err != nil {
			t.Fatal(err)
		}
		actor := *ef
		actor.actor = fmt.Sprintf("%s-%d", ef.actor, i)
		if err := e.Register(chaosWorkflows(&actor)...); err != nil {
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
		set.engines = append(set.engines, e)
		set.drivers = append(set.drivers, drv)
		set.logs = append(set.logs, counter)
	}
	return set
}

func (s *engineSet) txRetries() int64 {
	var n int64
	for _, d := range s.drivers {
		n += d.Stats().TxRetries
	}
	return n
}

// logged counts a log message over the engines.
func (s *engineSet) logged(msg string) int {
	n := 0
	for _, l := range s.logs {
		n += l.count(msg)
	}
	return n
}

func (s *engineSet) logSummary() string {
	out := ""
	for i, l := range s.logs {
		out += fmt.Sprintf("engine %d logged:\n%s", i, l.summary())
	}
	return out
}

// TestDatabaseRestart: two engines work N chaos runs on a PostgreSQL cluster
// the test owns, which is restarted under load (alternating fast and
// immediate shutdowns: terminated backends, then a crash with WAL
// recovery). The pools reconnect, the queue's listeners reconnect, and
// every run succeeds with each effect exactly once.
func TestDatabaseRestart(t *testing.T) {
	started := time.Now()
	cluster := startCluster(t)
	n := pick(40, 200)
	restarts := pick(2, 6)
	const schema = "reliability"

	admin := newPool(t, poolConfig(t, cluster.URL(), "reliability-admin", 6))
	adminDrv := postgres.New(admin, postgres.Options{Schema: schema})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := adminDrv.Migrator().Up(ctx); err != nil {
		cancel()
		t.Fatalf("migrate: %v", err)
	}
	cancel()
	createScenarioTables(t, admin, schema)

	side := newPool(t, poolConfig(t, cluster.URL(), "reliability-side", 8))
	ef := &effector{schema: schema, side: side, actor: "engine", sleep: 20 * time.Millisecond}
	ids := enqueueChaos(t, adminDrv, ef, n)

	const app = "acidic-reliability-restart"
	set := startEngines(t, cluster.URL(), schema, app, 2, 4, ef, resilientEngineConfig, nil)

	total := n * chaosEffects
	for i := range restarts {
		// Restart at evenly spread points of the load.
		target := total * (i + 1) / (restarts + 1)
		ok, saw := waitUntil(pick(90*time.Second, 5*time.Minute), 20*time.Millisecond, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			effects, _, err := chaosProgress(ctx, admin, schema)
			if err != nil {
				return false, err.Error()
			}
			return effects >= target, fmt.Sprintf("%d of %d effects (restart %d at %d)", effects, total, i+1, target)
		})
		if !ok {
			t.Fatalf("no progress before restart %d: %s\n%s", i+1, saw, set.logSummary())
		}
		mode := "fast"
		if i%2 == 1 {
			mode = "immediate"
		}
		if err := cluster.restart(mode); err != nil {
			t.Fatalf("%v\nserver log:\n%s", err, cluster.log())
		}
	}

	ok, saw := waitChaos(t, admin, schema, n, stallTimeout(), pick(3*time.Minute, 10*time.Minute))
	if !ok {
		t.Errorf("did not finish after %d restarts: %s; unfinished runs:%s\n%s", restarts, saw, describeStuck(t, admin, schema), set.logSummary())
	}
	dups, lost := verifyChaos(t, admin, schema, ids)

	// The queue's listeners reconnected: each engine has a LISTEN
	// connection again.
	ok, saw = waitUntil(30*time.Second, 100*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var listeners int
		err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'listen %'", app).Scan(&listeners)
		if err != nil {
			return false, err.Error()
		}
		return listeners >= len(set.engines), fmt.Sprintf("%d listening connections, want %d", listeners, len(set.engines))
	})
	if !ok {
		t.Errorf("the queue's listeners did not reconnect after the restarts: %s", saw)
	}
	stepFailures, reconnects := set.logged("workflow: step failed"), set.logged("queue: listener lost; reconnecting")
	for i, l := range set.logs {
		if l.count("queue: listener lost; reconnecting") == 0 {
			t.Errorf("engine %d: its listener never noticed the restarts", i)
		}
	}
	t.Logf("reliability: scenario=database-restart step_failures=%d listener_reconnects=%d", stepFailures, reconnects)
	if t.Failed() {
		t.Logf("%s", set.logSummary())
	}
	report(t, counts{scenario: "database-restart", runs: n, restarts: restarts, txRetries: set.txRetries(), duplicates: dups, lost: lost}, started)
}
