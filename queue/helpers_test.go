package queue_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

func testURL() string { return testdb.URL() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fastConfig is a client config with short intervals so tests never wait long.
func fastConfig(ws *queue.Workers, workers int) queue.Config {
	return queue.Config{
		Workers:             ws,
		Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: workers}},
		PollInterval:        20 * time.Millisecond,
		HeartbeatInterval:   20 * time.Millisecond,
		RescueAfter:         time.Hour,
		MaintenanceInterval: time.Hour,
		Logger:              quietLogger(),
	}
}

// quietLogger keeps client logs out of test output; set ACIDIC_TEST_LOG=1 to see them.
func quietLogger() *slog.Logger {
	if os.Getenv("ACIDIC_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

// newClient makes a client; started clients are stopped at cleanup.
func newClient(t *testing.T, drv storage.Driver, cfg queue.Config) *queue.Client {
	t.Helper()
	c, err := queue.New(drv, cfg)
	if err != nil {
		t.Fatalf("queue.New: %v", err)
	}
	return c
}

func start(t *testing.T, c *queue.Client) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
}

// waitJob polls until the job reaches a state in want, or fails the test.
func waitJob(t *testing.T, drv storage.Driver, id int64, want ...acidic.JobState) *acidic.Job {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		j, err := drv.JobGet(context.Background(), storage.JobGetParams{ID: id})
		if err != nil {
			t.Fatalf("JobGet %d: %v", id, err)
		}
		for _, s := range want {
			if j.State == s {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d: state %s, want one of %v (errors %v)", id, j.State, want, j.Errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countRows counts the rows of a table in the driver's schema.
func countRows(t *testing.T, drv *postgres.Driver, table string) int {
	t.Helper()
	var n int
	q := "SELECT count(*) FROM " + pgx.Identifier{drv.Schema(), table}.Sanitize()
	if err := drv.Pool().QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func execSQL(t *testing.T, drv *postgres.Driver, sql string, args ...any) {
	t.Helper()
	if _, err := drv.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

func table(drv *postgres.Driver, name string) string {
	return pgx.Identifier{drv.Schema(), name}.Sanitize()
}
