package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Engine helpers shared with other packages' tests.
var (
	engineConfig = enginetest.Config
	quietLogger  = enginetest.QuietLogger
	newEngine    = enginetest.New
	startEngine  = enginetest.Start
	waitRun      = enginetest.WaitRun
)

// table names a table of the driver's store in SQL (see testdb.Table).
func table(drv storage.Driver, name string) string { return testdb.Table(drv, name) }

// execSQL runs a statement on either driver's store (see testdb.Exec).
func execSQL(t *testing.T, drv storage.Driver, sql string, args ...any) {
	t.Helper()
	testdb.Exec(t, drv, sql, args...)
}

// createEffects makes a table where each step records its effect; the
// primary key catches a step whose effect happened twice.
func createEffects(t *testing.T, drv storage.Driver) {
	execSQL(t, drv, "CREATE TABLE "+table(drv, "effects")+" (run_id uuid, step text, item int NOT NULL DEFAULT 0, PRIMARY KEY (run_id, step, item))")
}

// recordEffect writes a step's effect in the step's own transaction.
func recordEffect(ctx context.Context, drv storage.Driver, tx storage.Tx, runID uuid.UUID, step string, item int) error {
	return testdb.TxExec(ctx, tx, "INSERT INTO "+table(drv, "effects")+" (run_id, step, item) VALUES ($1, $2, $3)", runID, step, item)
}

func countEffects(t *testing.T, drv storage.Driver, runID uuid.UUID, step string) int {
	t.Helper()
	return testdb.Count(t, drv, "effects", "run_id = $1 AND step = $2", runID, step)
}

// fastOptions are workflow options with a short backoff, so retries in tests
// take milliseconds.
func fastOptions(maxAttempts int) workflow.Options {
	return workflow.Options{
		MaxAttempts: maxAttempts,
		Backoff:     func(int, error) time.Duration { return 5 * time.Millisecond },
	}
}

// waitFor polls cond until it reports true, or fails the test after timeout
// with cond's last description of what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last saw: %s", timeout, what, saw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jobsOf lists the jobs of a run, of one kind when kind is set.
func jobsOf(t *testing.T, drv storage.Driver, runID uuid.UUID, kind string) []*acidic.Job {
	t.Helper()
	jobs, err := drv.JobList(context.Background(), acidic.JobFilter{RunID: runID, Kind: kind})
	if err != nil {
		t.Fatalf("JobList(run %s): %v", runID, err)
	}
	return jobs
}

// liveJobStates are the states of a job that may still run.
var liveJobStates = []acidic.JobState{acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}

func liveJobs(t *testing.T, drv storage.Driver, runID uuid.UUID) []*acidic.Job {
	t.Helper()
	jobs, err := drv.JobList(context.Background(), acidic.JobFilter{RunID: runID, States: liveJobStates})
	if err != nil {
		t.Fatalf("JobList(run %s): %v", runID, err)
	}
	return jobs
}

func describeJobs(jobs []*acidic.Job) string {
	s := ""
	for _, j := range jobs {
		s += fmt.Sprintf("[job %d %s %s attempt %d/%d] ", j.ID, j.Kind, j.State, j.Attempt, j.MaxAttempts)
	}
	return s
}

// waitJobsFinal waits until every job of the run (of kind, when set) reached
// a final state, and returns them.
func waitJobsFinal(t *testing.T, drv storage.Driver, runID uuid.UUID, kind string) []*acidic.Job {
	t.Helper()
	var jobs []*acidic.Job
	waitFor(t, 20*time.Second, "the run's jobs to finish", func() (bool, string) {
		jobs = jobsOf(t, drv, runID, kind)
		for _, j := range jobs {
			if !j.State.Final() {
				return false, describeJobs(jobs)
			}
		}
		return true, ""
	})
	return jobs
}

// countRows counts the rows of a table in the driver's schema matching where
// (a SQL condition, may be empty).
func countRows(t *testing.T, drv storage.Driver, name, where string, args ...any) int {
	t.Helper()
	return testdb.Count(t, drv, name, where, args...)
}

// ageHeartbeat makes a running job's last heartbeat an hour old, as if its
// worker died then.
func ageHeartbeat(t *testing.T, drv storage.Driver, jobID int64) {
	t.Helper()
	execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET heartbeat_at = $2 WHERE id = $1", jobID, time.Now().Add(-time.Hour))
}

// argN decodes the field n of a run's arguments. (Tests compare decoded
// arguments: PostgreSQL's jsonb renders {"n": 1}, SQLite keeps the
// canonical {"n":1} enqueue wrote.)
func argN(t *testing.T, r *acidic.Run) int {
	t.Helper()
	var a struct {
		N int `json:"n"`
	}
	if err := json.Unmarshal(r.Args, &a); err != nil {
		t.Fatalf("run %s args %s: %v", r.ID, r.Args, err)
	}
	return a.N
}

// stepLog returns the step log entry of a step by name.
func stepLog(t *testing.T, r *acidic.Run, name string) acidic.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("run %s: no step %q in the step log %+v", r.ID, name, r.Steps)
	return acidic.Step{}
}

// getRun reads a run with its step log.
func getRun(t *testing.T, e *workflow.Engine, id uuid.UUID) *acidic.Run {
	t.Helper()
	r, err := e.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return r
}

// enqueue enqueues a run and returns its id.
func enqueue(t *testing.T, e *workflow.Engine, name string, args any) uuid.UUID {
	t.Helper()
	res, err := e.Enqueue(context.Background(), name, args, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatalf("Enqueue %s: %v", name, err)
	}
	return res.Run.ID
}

// waitSucceeded waits until the run ends and fails the test unless it
// succeeded.
func waitSucceeded(t *testing.T, e *workflow.Engine, id uuid.UUID) *acidic.Run {
	t.Helper()
	r := waitRun(t, e, id, acidic.RunSucceeded, acidic.RunFailed)
	if r.State != acidic.RunSucceeded {
		t.Fatalf("run %s (%s)", r.State, r.Error)
	}
	return r
}

// counter counts calls by name, safely from many goroutines.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
	return c.n[name]
}

func (c *counter) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}
