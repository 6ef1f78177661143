package workflow_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// engineConfig is an engine config with short intervals, working "default".
func engineConfig(workers int) workflow.Config {
	return workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: workers}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   20 * time.Millisecond,
			RescueAfter:         time.Hour,
			MaintenanceInterval: time.Hour,
		},
		LockedRetry: 20 * time.Millisecond,
	}
}

// newEngine makes and registers an engine; start it with startEngine.
func newEngine(t *testing.T, drv storage.Driver, cfg workflow.Config, defs ...workflow.Definition) *workflow.Engine {
	t.Helper()
	e, err := workflow.NewEngine(drv, cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	if err := e.Register(defs...); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return e
}

func startEngine(t *testing.T, e *workflow.Engine) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
}

// waitRun polls until the run reaches one of the states, or fails the test.
func waitRun(t *testing.T, e *workflow.Engine, id uuid.UUID, want ...storage.RunState) *workflow.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("Get %s: %v", id, err)
		}
		for _, s := range want {
			if r.State == s {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: state %s at %s (error %q), want one of %v", id, r.State, r.RecoveryPoint, r.Error, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func table(drv *postgres.Driver, name string) string {
	return pgx.Identifier{drv.Schema(), name}.Sanitize()
}

func execSQL(t *testing.T, drv *postgres.Driver, sql string, args ...any) {
	t.Helper()
	if _, err := drv.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// createEffects makes a table where each step records its effect; the
// primary key catches a step whose effect happened twice.
func createEffects(t *testing.T, drv *postgres.Driver) {
	execSQL(t, drv, "CREATE TABLE "+table(drv, "effects")+" (run_id uuid, step text, item int NOT NULL DEFAULT 0, PRIMARY KEY (run_id, step, item))")
}

// recordEffect writes a step's effect in the step's own transaction.
func recordEffect(ctx context.Context, drv *postgres.Driver, tx storage.Tx, runID uuid.UUID, step string, item int) error {
	_, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+table(drv, "effects")+" (run_id, step, item) VALUES ($1, $2, $3)", runID, step, item)
	return err
}

func countEffects(t *testing.T, drv *postgres.Driver, runID uuid.UUID, step string) int {
	t.Helper()
	var n int
	err := drv.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table(drv, "effects")+" WHERE run_id = $1 AND step = $2", runID, step).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
