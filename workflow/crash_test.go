package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/workflow"
)

// A worker process killed in the middle of step 2 loses only that step's
// uncommitted transaction: another engine rescues the job, takes over the
// run's lease and resumes at step 2. Every step's effect happens once.
func TestKilledWorkerRunResumesAtUncommittedStep(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker process is reached by DATABASE_URL and schema (see startWorkflowWorker), and waitSessionsGone reads pg_stat_activity.
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	execSQL(t, drv, "CREATE TABLE "+table(drv, "markers")+" (run_id uuid NOT NULL, step text NOT NULL, pid int NOT NULL)")

	cfg := workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: 2}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   50 * time.Millisecond,
			RescueAfter:         300 * time.Millisecond,
			MaintenanceInterval: 50 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
	}
	e := newEngine(t, drv, cfg, crashyWorkflow(drv, ""))
	id := enqueue(t, e, "crashy", crashyArgs{Order: "o-1"})

	proc := startWorkflowWorker(t, drv.Schema(), "step2")
	waitFor(t, 30*time.Second, "the worker process to hang in step2", func() (bool, string) {
		n := countRows(t, drv, "markers", "run_id = $1", id)
		return n == 1, "no marker yet"
	})
	// Step 1 committed; step 2's effect is written but not committed.
	if n1, n2 := countEffects(t, drv, id, "step1"), countEffects(t, drv, id, "step2"); n1 != 1 || n2 != 0 {
		t.Fatalf("before the kill: step1 %d effects, step2 %d; want 1 and 0", n1, n2)
	}
	if r := getRun(t, e, id); r.State != acidic.RunRunning || r.RecoveryPoint != "step2" {
		t.Fatalf("before the kill: run %s at %s, want running at step2", r.State, r.RecoveryPoint)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()

	killed := time.Now()
	startEngine(t, e)
	r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
	if r.State != acidic.RunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", r.State, r.Error)
	}
	t.Logf("run finished %s after the kill", time.Since(killed).Round(time.Millisecond))

	for _, s := range []string{"step1", "step2", "step3"} {
		if n := countEffects(t, drv, id, s); n != 1 {
			t.Errorf("%s: %d effects, want 1", s, n)
		}
		if l := stepLog(t, r, s); l.Executions != 1 || l.State != acidic.StepSucceeded {
			t.Errorf("%s step log: %s, %d executions; want succeeded once", s, l.State, l.Executions)
		}
	}
	if l := stepLog(t, r, "step2"); l.Attempt != 2 {
		t.Errorf("step2 committed on attempt %d, want 2 (after the rescue)", l.Attempt)
	}
	var st crashyState
	if err := json.Unmarshal(r.Attrs, &st); err != nil || !reflect.DeepEqual(st.Done, []string{"step1", "step2", "step3"}) {
		t.Errorf("state %s (%v), want each step recorded once", r.Attrs, err)
	}
	if n := countRows(t, drv, "markers", ""); n != 1 {
		t.Errorf("%d markers, want 1 (only the killed worker hangs)", n)
	}
	jobs := waitJobsFinal(t, drv, id, "crashy")
	if len(jobs) != 1 {
		t.Fatalf("jobs: %s, want the one job", describeJobs(jobs))
	}
	j := jobs[0]
	if j.State != acidic.JobCompleted || j.Attempt != 2 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "rescued") {
		t.Errorf("job %d: %s, attempt %d, errors %v; want completed on attempt 2 after a rescue", j.ID, j.State, j.Attempt, j.Errors)
	}
}

// A worker process killed in the middle of a for-each step over 1,000 items
// loses only the item it was working on: another engine resumes at that
// item, and every item's effect exists exactly once (the effects table's
// primary key would fail a repeated item).
func TestKilledWorkerResumesForEachAtTheRightItem(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker process is reached by DATABASE_URL and schema (see startWorkflowWorker).
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	cfg := workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: 1}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   50 * time.Millisecond,
			RescueAfter:         300 * time.Millisecond,
			MaintenanceInterval: 50 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      quietLogger(),
	}
	var first atomic.Int64
	first.Store(-1)
	e := newEngine(t, drv, cfg, iteratingWorkflow(drv, 0, func(item int) { first.CompareAndSwap(-1, int64(item)) }))
	id := enqueue(t, e, "iterating", crashyArgs{Order: "o-2"})

	proc := startWorkflowWorker(t, drv.Schema(), "")
	waitFor(t, 30*time.Second, "the worker process to commit some items", func() (bool, string) {
		n := countEffects(t, drv, id, "items")
		return n >= 100, fmt.Sprintf("%d items so far", n)
	})
	if n := workerSessions(t, drv); n == 0 {
		t.Fatalf("no database session of the worker process found by application_name %q", workerAppName(drv.Schema()))
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()
	// The killed worker's last COMMIT may still land until its sessions end;
	// then read the items and the cursor in one snapshot.
	waitSessionsGone(t, drv)
	var committed int
	var cursor int64
	err := drv.Pool().QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM "+table(drv, "effects")+" WHERE run_id = $1 AND step = 'items'),"+
			" (SELECT cursor FROM "+table(drv, "runs")+" WHERE id = $1)", id).Scan(&committed, &cursor)
	if err != nil {
		t.Fatal(err)
	}
	if committed >= 1000 {
		t.Fatalf("the worker finished all items before the kill; nothing to resume")
	}
	if cursor != int64(committed) {
		t.Fatalf("after the kill: cursor %d, but %d items committed", cursor, committed)
	}

	startEngine(t, e)
	r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed, acidic.RunCancelled)
	if r.State != acidic.RunSucceeded {
		t.Fatalf("run %s (%s), want succeeded", r.State, r.Error)
	}
	if got := first.Load(); got != int64(committed) {
		t.Fatalf("the resuming engine started at item %d, want %d (the first uncommitted item)", got, committed)
	}
	if n := countEffects(t, drv, id, "items"); n != 1000 {
		t.Fatalf("%d item effects, want 1000", n)
	}
	if n := countEffects(t, drv, id, "done"); n != 1 {
		t.Fatalf("last step: %d effects, want 1", n)
	}
	t.Logf("killed after %d of 1000 items; resumed at item %d", committed, first.Load())
}

// A worker process killed (SIGKILL) during its job's last attempt: the
// rescue discards the job and, in the same transaction, fails the run,
// with the reason, settled. Nothing is left pending and step 3 never runs.
func TestKilledWorkerOnTheLastAttemptFailsTheRun(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker process is reached by DATABASE_URL and schema (see startWorkflowWorker), and waitSessionsGone reads pg_stat_activity.
	drv := testdb.New(t, testdb.Options{})
	createEffects(t, drv)
	execSQL(t, drv, "CREATE TABLE "+table(drv, "markers")+" (run_id uuid NOT NULL, step text NOT NULL, pid int NOT NULL)")
	cfg := workflow.Config{
		Queue: queue.Config{
			Queues:              map[string]queue.QueueConfig{"default": {MaxWorkers: 2}},
			PollInterval:        20 * time.Millisecond,
			HeartbeatInterval:   50 * time.Millisecond,
			RescueAfter:         300 * time.Millisecond,
			MaintenanceInterval: 50 * time.Millisecond,
		},
		LockedRetry: 20 * time.Millisecond,
		Logger:      quietLogger(),
	}
	e := newEngine(t, drv, cfg, crashyWorkflow(drv, ""))
	id := enqueue(t, e, "crashy", crashyArgs{Order: "o-last"})

	proc := startWorkflowWorker(t, drv.Schema(), "step2")
	waitFor(t, 30*time.Second, "the worker process to hang in step2", func() (bool, string) {
		return countRows(t, drv, "markers", "run_id = $1", id) == 1, "no marker yet"
	})
	// This attempt is the job's last.
	execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET max_attempts = attempt WHERE run_id = $1 AND state = 'running'", id)
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = proc.Wait()

	startEngine(t, e)
	r := waitRun(t, e, id, acidic.RunFailed, acidic.RunSucceeded, acidic.RunCancelled)
	if r.State != acidic.RunFailed || !strings.Contains(r.Error, "attempts exhausted") || !strings.Contains(r.Error, "stopped heartbeating") {
		t.Fatalf("run %s (%q), want failed by the rescue of its last attempt", r.State, r.Error)
	}
	if r.SettledAt == nil || r.LockedBy != "" || r.RecoveryPoint != "step2" {
		t.Errorf("failed run: settled %v, locked by %q, at %s; want settled, unlocked, at step2", r.SettledAt, r.LockedBy, r.RecoveryPoint)
	}
	if n1, n2, n3 := countEffects(t, drv, id, "step1"), countEffects(t, drv, id, "step2"), countEffects(t, drv, id, "step3"); n1 != 1 || n2 != 0 || n3 != 0 {
		t.Errorf("effects: step1 %d, step2 %d, step3 %d; want 1, 0, 0", n1, n2, n3)
	}
	for _, j := range waitJobsFinal(t, drv, id, "crashy") {
		if j.State != acidic.JobDiscarded {
			t.Errorf("job %d %s, want discarded", j.ID, j.State)
		}
	}
}
