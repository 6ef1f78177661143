package queue_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
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

// countRows counts the rows of a table in the driver's store.
func countRows(t *testing.T, drv storage.Driver, table string) int {
	t.Helper()
	return testdb.Count(t, drv, table, "")
}

// execSQL runs a statement on the driver's store (see testdb.Exec).
func execSQL(t *testing.T, drv storage.Driver, sql string, args ...any) {
	t.Helper()
	testdb.Exec(t, drv, sql, args...)
}

// table names a table of the driver's store (see testdb.Table).
func table(drv storage.Driver, name string) string { return testdb.Table(drv, name) }

// watchListening wraps drv so that a test can wait until a client made on
// the wrapper listens to every topic (it subscribes to TopicControl last,
// see control.go): from then on no notification passes it by. It works on
// both drivers, where waitQueueListening reads pg_stat_activity.
func watchListening(drv storage.Driver) (storage.Driver, func(t *testing.T)) {
	listened := make(chan struct{}, 64)
	wait := func(t *testing.T) {
		t.Helper()
		select {
		case <-listened:
		case <-time.After(20 * time.Second):
			t.Fatal("no listener subscribed to the control topic")
		}
	}
	return listeningDriver{drv, listened}, wait
}

type listeningDriver struct {
	storage.Driver
	listened chan struct{}
}

func (d listeningDriver) NewListener(ctx context.Context) (storage.Listener, error) {
	l, err := d.Driver.NewListener(ctx)
	if err != nil {
		return nil, err
	}
	return listeningListener{l, d.listened}, nil
}

type listeningListener struct {
	storage.Listener
	listened chan struct{}
}

func (l listeningListener) Listen(ctx context.Context, topic string) error {
	err := l.Listener.Listen(ctx, topic)
	if err == nil && topic == storage.TopicControl {
		select {
		case l.listened <- struct{}{}:
		default:
		}
	}
	return err
}

// jsonHas tells whether the JSON object doc holds key with the number
// want. PostgreSQL's jsonb and SQLite's text spell a document differently
// (spaces, key order), so tests compare what it says.
func jsonHas(doc []byte, key string, want float64) bool {
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil {
		return false
	}
	got, ok := m[key].(float64)
	return ok && got == want
}
