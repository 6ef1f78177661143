package queue_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage/postgres"
)

func createExecutions(t *testing.T, drv *postgres.Driver) {
	execSQL(t, drv, "CREATE TABLE "+table(drv, "executions")+
		" (job_id bigint, attempt int, pid int, PRIMARY KEY (job_id, attempt))")
}

func TestJobRunsOncePerAttemptAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker processes (workerProcess) connect to PostgreSQL; SQLite's processes are tested in storage/sqlite.
	drv := testdb.New(t, testdb.Options{})
	createExecutions(t, drv)
	c := newClient(t, drv, queue.Config{})
	const n = 300
	params := make([]queue.EnqueueParams, n)
	for i := range params {
		params[i] = queue.EnqueueParams{Kind: "record"}
	}
	ctx := ctxT(t)
	if _, err := c.EnqueueMany(ctx, params); err != nil {
		t.Fatal(err)
	}
	// 2 processes × 4 workers = 8 concurrent workers.
	startWorkerProcess(t, drv.Schema(), "record", 4)
	startWorkerProcess(t, drv.Schema(), "record", 4)
	deadline := time.Now().Add(60 * time.Second)
	for {
		done, err := drv.JobList(ctx, acidic.JobFilter{States: []acidic.JobState{acidic.JobCompleted}, Limit: n + 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(done) == n {
			for _, j := range done {
				if j.Attempt != 1 {
					t.Fatalf("job %d needed %d attempts (errors %v)", j.ID, j.Attempt, j.Errors)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed", len(done), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := countRows(t, drv, "executions"); got != n {
		t.Fatalf("%d executions for %d jobs", got, n)
	}
	var pids int
	if err := drv.Pool().QueryRow(ctx, "SELECT count(DISTINCT pid) FROM "+table(drv, "executions")).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	if pids != 2 {
		t.Fatalf("jobs ran in %d processes, want both", pids)
	}
}

func TestJobOfKilledWorkerIsRescuedAndRunsAgain(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker processes (workerProcess) connect to PostgreSQL; SQLite's processes are tested in storage/sqlite.
	drv := testdb.New(t, testdb.Options{})
	createExecutions(t, drv)
	ctx := ctxT(t)
	c := newClient(t, drv, queue.Config{})
	j, err := c.Enqueue(ctx, "record", nil, queue.EnqueueOptions{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	proc := startWorkerProcess(t, drv.Schema(), "hang", 1)
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, drv, "executions") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("worker process never started the job")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()

	// A live client rescues the orphan and runs it to completion.
	ws := queue.NewWorkers()
	_ = ws.Handle("record", func(ctx context.Context, job *acidic.Job) error {
		execSQL(t, drv, "INSERT INTO "+table(drv, "executions")+" (job_id, attempt, pid) VALUES ($1, $2, 0)", job.ID, job.Attempt)
		return nil
	}, queue.KindOptions{})
	// RescueAfter long enough that, on a loaded machine, the rescued
	// attempt's own completion is written before it could look stale.
	cfg := fastConfig(ws, 1)
	cfg.RescueAfter = time.Second
	cfg.MaintenanceInterval = 50 * time.Millisecond
	start(t, newClient(t, drv, cfg))
	done := waitJob(t, drv, j.ID, acidic.JobCompleted)
	if done.Attempt != 2 || len(done.Errors) != 1 || !strings.Contains(done.Errors[0].Error, "rescued") {
		t.Fatalf("rescued job: attempt %d errors %v", done.Attempt, done.Errors)
	}
	if got := countRows(t, drv, "executions"); got != 2 {
		t.Fatalf("%d executions, want 2 (killed attempt + rescued attempt)", got)
	}
}
