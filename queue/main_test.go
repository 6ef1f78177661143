package queue_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/postgres"
)

// TestMain doubles as a worker process: tests that need real processes (to
// run workers side by side, or to SIGKILL one) start this test binary again
// with ACIDIC_TEST_WORKER set.
func TestMain(m *testing.M) {
	if os.Getenv("ACIDIC_TEST_WORKER") != "" {
		os.Exit(workerProcess())
	}
	os.Exit(m.Run())
}

// workerProcess works queue "default" of a schema. Every attempt is recorded
// in the executions table, whose primary key (job_id, attempt) makes a
// duplicate execution fail loudly. In mode "hang" each job blocks forever
// after recording itself. In mode "periodic" it runs the periodic pass of
// an @every 1s schedule instead (periodicProcess).
// In mode "report" the process also keeps its
// queue state in the node_states table (reportQueueState).
func workerProcess() int {
	schema := os.Getenv("ACIDIC_TEST_SCHEMA")
	mode := os.Getenv("ACIDIC_TEST_WORKER")
	workers, _ := strconv.Atoi(os.Getenv("ACIDIC_TEST_WORKERS"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pool.Close()
	drv := postgres.New(pool, postgres.Options{Schema: schema})
	if mode == "periodic" {
		return periodicProcess(ctx, drv)
	}
	table := pgx.Identifier{schema, "executions"}.Sanitize()
	ws := queue.NewWorkers()
	_ = ws.Handle("record", func(ctx context.Context, job *acidic.Job) error {
		if _, err := pool.Exec(ctx, "INSERT INTO "+table+" (job_id, attempt, pid) VALUES ($1, $2, $3)", job.ID, job.Attempt, os.Getpid()); err != nil {
			return err
		}
		if mode == "hang" {
			<-ctx.Done()
			select {} // ignore even cancellation: only SIGKILL ends this
		}
		time.Sleep(time.Millisecond)
		return nil
	}, queue.KindOptions{})
	client, err := queue.New(drv, queue.Config{
		Workers:           ws,
		Queues:            map[string]queue.QueueConfig{"default": {MaxWorkers: workers}},
		PollInterval:      50 * time.Millisecond,
		HeartbeatInterval: 50 * time.Millisecond,
		RescueAfter:       time.Hour,              // only the test rescues
		LeaderLease:       300 * time.Millisecond, // a killed worker's lead passes on soon
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := client.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode == "report" {
		go reportQueueState(ctx, pool, schema, client)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.Stop(stopCtx)
	return 0
}

// reportQueueState keeps this process's row of the node_states table (made
// by the test) up to date with how its client works queue "default", so
// the test can tell when a process has read the controls.
func reportQueueState(ctx context.Context, pool *pgxpool.Pool, schema string, c *queue.Client) {
	q := "INSERT INTO " + pgx.Identifier{schema, "node_states"}.Sanitize() + ` (pid, paused, read_at) VALUES ($1, $2, $3)
		ON CONFLICT (pid) DO UPDATE SET paused = excluded.paused, read_at = excluded.read_at`
	for ctx.Err() == nil {
		if s, ok := c.QueueState("default"); ok && !s.ControlsReadAt.IsZero() {
			if _, err := pool.Exec(ctx, q, os.Getpid(), s.Paused, s.ControlsReadAt); err != nil && ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, "report:", err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWorkerProcess runs this test binary as a worker process on schema.
func startWorkerProcess(t *testing.T, schema, mode string, workers int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"ACIDIC_TEST_WORKER="+mode,
		"ACIDIC_TEST_SCHEMA="+schema,
		"ACIDIC_TEST_WORKERS="+strconv.Itoa(workers),
		"DATABASE_URL="+testURL(),
	)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
