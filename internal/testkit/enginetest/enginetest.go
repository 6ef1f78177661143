// Package enginetest holds the helpers the tests of several packages use to
// run a workflow engine against the test database: a configuration with
// short intervals, engine set-up and tear-down, and waiting for a run.
package enginetest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// Config is an engine configuration with short intervals that works the
// "default" queue with the given number of workers.
func Config(workers int) workflow.Config {
	return workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: workers}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   20 * time.Millisecond,
			RescueAfter:         time.Hour,
			MaintenanceInterval: time.Hour,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      QuietLogger(),
	}
}

// QuietLogger keeps engine logs out of test output; set ACIDIC_TEST_LOG=1 to
// see them.
func QuietLogger() *slog.Logger {
	if os.Getenv("ACIDIC_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}

// New makes an engine on drv and registers defs; start it with Start.
func New(t testing.TB, drv storage.Driver, cfg workflow.Config, defs ...workflow.Definition) *workflow.Engine {
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

// Start starts e and stops it when the test ends.
func Start(t testing.TB, e *workflow.Engine) {
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

// WaitRun polls until the run reaches one of the states, or fails the test
// after 30 seconds.
func WaitRun(t testing.TB, e *workflow.Engine, id uuid.UUID, want ...acidic.RunState) *acidic.Run {
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

// DeliverRunJob inserts one more job for run id through q, as a redelivery
// of the run's job would: the job of workflow kind kind, with opts,
// carrying the run.
func DeliverRunJob(ctx context.Context, t testing.TB, q *queue.Client, kind string, id uuid.UUID, opts queue.EnqueueOptions) *acidic.Job {
	t.Helper()
	in, err := q.JobInsert(queue.EnqueueParams{Kind: kind, Opts: opts})
	if err != nil {
		t.Fatalf("job of run %s: %v", id, err)
	}
	in.RunID = id
	jobs, err := q.Driver().JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{in}})
	if err != nil {
		t.Fatalf("insert a job of run %s: %v", id, err)
	}
	return jobs[0]
}
