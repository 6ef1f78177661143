package queue_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
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

// slowWorkers handles kind with a job that closes started when it runs and
// returns once release is closed (its context's error: nil unless the job
// was cancelled).
func slowWorkers(kind string) (ws *queue.Workers, started, release chan struct{}) {
	ws = queue.NewWorkers()
	started, release = make(chan struct{}), make(chan struct{})
	_ = ws.Handle(kind, func(ctx context.Context, job *acidic.Job) error {
		close(started)
		<-release
		return ctx.Err() // nil unless the job's context was cancelled
	}, queue.KindOptions{})
	return ws, started, release
}

// stuckWorkers handles kind with a job that closes started when it runs and
// returns only when its context is cancelled.
func stuckWorkers(kind string) (ws *queue.Workers, started chan struct{}) {
	ws = queue.NewWorkers()
	started = make(chan struct{})
	_ = ws.Handle(kind, func(ctx context.Context, job *acidic.Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}, queue.KindOptions{})
	return ws, started
}

// checkCutShortByStop fails the test unless job j, whose attempt the
// client's stop cut short, is due again at once, the attempt not spent and
// the interruption recorded.
func checkCutShortByStop(t *testing.T, drv storage.Driver, j *acidic.Job) {
	t.Helper()
	if got, _ := drv.JobGet(context.Background(), storage.JobGetParams{ID: j.ID}); got.State != acidic.JobScheduled || len(got.Errors) != 1 ||
		!strings.HasPrefix(got.Errors[0].Error, "stopped with the client") || got.MaxAttempts != j.MaxAttempts+1 {
		t.Fatalf("job %s with errors %v, max attempts %d; want scheduled, the stop recorded, the attempt not spent", got.State, got.Errors, got.MaxAttempts)
	}
}

// recordOrder handles kind with a job that records its args, a JSON
// string, and returns at once. ran returns the args recorded so far, in
// the order the jobs ran.
func recordOrder(ws *queue.Workers, kind string) (ran func() []string) {
	var mu sync.Mutex
	var order []string
	_ = ws.Handle(kind, func(ctx context.Context, job *acidic.Job) error {
		var name string
		_ = json.Unmarshal(job.Args, &name)
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
		return nil
	}, queue.KindOptions{})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
}
