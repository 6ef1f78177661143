package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

func runInsert(key string) storage.RunInsertParams {
	return storage.RunInsertParams{
		ID:             uuid.New(),
		IdempotencyKey: key,
		Workflow:       "wf",
		Args:           json.RawMessage(`{"a":1}`),
		Queue:          "runs",
		RecoveryPoint:  "step1",
		DefinitionHash: "hash",
	}
}

func insertRunWith(ctx context.Context, t *testing.T, e storage.Executor, in storage.RunInsertParams) *acidic.Run {
	t.Helper()
	r, created, err := e.RunInsert(ctx, in)
	if err != nil {
		t.Fatalf("RunInsert(%s): %v", in.IdempotencyKey, err)
	}
	if !created {
		t.Fatalf("RunInsert(%s) created = false, want true", in.IdempotencyKey)
	}
	return r
}

func insertRun(ctx context.Context, t *testing.T, e storage.Executor, key string) *acidic.Run {
	t.Helper()
	return insertRunWith(ctx, t, e, runInsert(key))
}

func getRun(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) *acidic.Run {
	t.Helper()
	r, err := e.RunGet(ctx, storage.RunGetParams{ID: id})
	if err != nil {
		t.Fatalf("RunGet(%s): %v", id, err)
	}
	return r
}

// runningJob inserts a job of run and claims it without leasing the run, so
// that a test can take the lease with the attempt explicitly.
func runningJob(ctx context.Context, t *testing.T, drv *postgres.Driver, run uuid.UUID) storage.JobAttempt {
	t.Helper()
	in := job("lease_" + uuid.NewString())
	in.RunID = run
	j := insertJobs(ctx, t, drv, in)[0]
	claimed, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j.ID, WorkerID: "w"})
	if err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	return storage.JobAttempt{ID: claimed.ID, Attempt: claimed.Attempt}
}

// leasedRun inserts a run and leases it with token.
func leasedRun(ctx context.Context, t *testing.T, drv *postgres.Driver, key, token string) *acidic.Run {
	t.Helper()
	r := insertRun(ctx, t, drv, key)
	if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: token, Job: runningJob(ctx, t, drv, r.ID)}); !ok {
		t.Fatalf("lease of %s refused", key)
	}
	return r
}

func lease(ctx context.Context, t *testing.T, e storage.Executor, p storage.RunLeaseParams) (*acidic.Run, bool) {
	t.Helper()
	r, ok, err := e.RunLease(ctx, p)
	if err != nil {
		t.Fatalf("RunLease(%s, %s): %v", p.ID, p.Token, err)
	}
	if r == nil || r.ID != p.ID {
		t.Fatalf("RunLease(%s) returned run %+v", p.ID, r)
	}
	return r, ok
}

// TestDeletingRunsDeletesTheirSteps: the step log goes with its run, as the
// foreign key's ON DELETE CASCADE did before migration 0005 replaced it.
func TestDeletingRunsDeletesTheirSteps(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	var ids []uuid.UUID
	for _, key := range []string{"a", "b", "kept"} {
		r := leasedRun(ctx, t, drv, key, "tok-"+key)
		for pos := range 2 {
			_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: "tok-" + key, State: acidic.RunRunning, RecoveryPoint: "s",
				Step: &acidic.Step{Position: pos, Name: fmt.Sprint("s", pos), State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}})
			if err != nil {
				t.Fatalf("RunUpdate: %v", err)
			}
		}
		ids = append(ids, r.ID)
	}
	// The jobs refer to their runs (ON DELETE SET NULL); delete two runs in
	// one statement.
	runs := pgx.Identifier{drv.Schema(), "runs"}.Sanitize()
	if _, err := drv.Pool().Exec(ctx, "DELETE FROM "+runs+" WHERE id = ANY($1)", ids[:2]); err != nil {
		t.Fatalf("delete runs: %v", err)
	}
	var left []uuid.UUID
	steps := pgx.Identifier{drv.Schema(), "run_steps"}.Sanitize()
	rows, err := drv.Pool().Query(ctx, "SELECT DISTINCT run_id FROM "+steps)
	if err != nil {
		t.Fatal(err)
	}
	left, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != ids[2] {
		t.Errorf("step rows left for runs %v, want only %v", left, ids[2])
	}
}

// TestFetchLeaseTokenIsFreshForARepeatedAttempt: claims commit
// asynchronously, so a database crash can lose a claim and hand the same
// attempt number to the next claim while the first holder still runs. The
// lease the fetch takes must then differ, so that the first holder's step
// write fails its fence.
func TestFetchLeaseTokenIsFreshForARepeatedAttempt(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := insertRun(ctx, t, drv, "k")
	in := job("q")
	in.RunID, in.Kind = r.ID, r.Workflow
	j := insertJobs(ctx, t, drv, in)[0]

	first := fetchOne(ctx, t, drv, "q", "a")
	if first.LeasedRun == nil {
		t.Fatal("the fetch did not lease the run")
	}
	// The claim and the lease are lost, as in a crash before their WAL was
	// flushed.
	jobs := pgx.Identifier{drv.Schema(), "jobs"}.Sanitize()
	runs := pgx.Identifier{drv.Schema(), "runs"}.Sanitize()
	if _, err := drv.Pool().Exec(ctx, "UPDATE "+jobs+" SET state = 'available', attempt = attempt - 1, attempted_by = NULL WHERE id = $1", j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Pool().Exec(ctx, "UPDATE "+runs+" SET state = 'pending', locked_by = NULL, locked_at = NULL, locked_job_id = NULL, locked_attempt = NULL WHERE id = $1", r.ID); err != nil {
		t.Fatal(err)
	}
	second := fetchOne(ctx, t, drv, "q", "b")
	if second.Attempt != first.Attempt || second.LeasedRun == nil {
		t.Fatalf("second claim: attempt %d (first %d), leased %v", second.Attempt, first.Attempt, second.LeasedRun != nil)
	}
	if second.LeasedRun.LockedBy == first.LeasedRun.LockedBy {
		t.Fatalf("both claims of attempt %d hold lease token %q", first.Attempt, first.LeasedRun.LockedBy)
	}
	step := &acidic.Step{Position: 0, Name: "s", State: acidic.StepSucceeded, Attempt: first.Attempt, StartedAt: time.Now()}
	_, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: first.LeasedRun.LockedBy, State: acidic.RunRunning, RecoveryPoint: "s2", Step: step})
	if !errors.Is(err, acidic.ErrLeaseLost) {
		t.Errorf("the first holder's step write: err = %v, want ErrLeaseLost", err)
	}
	if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: r.ID, Token: second.LeasedRun.LockedBy, State: acidic.RunRunning, RecoveryPoint: "s2", Step: step}); err != nil {
		t.Errorf("the second holder's step write: %v", err)
	}
}

// TestRunLeaseNeverTakesALeaseTakenAfterItsSnapshot: a RunLease whose
// snapshot predates a concurrent fetch that claims another job of the run
// and leases the run to it. The UPDATE waits for the fetch's row lock and
// rechecks the new row version (EvalPlanQual), but its look at the jobs
// table still reads the old snapshot, where the new holder has not been
// claimed. The holder's end must be seen positively there, so the live
// lease is not taken.
func TestRunLeaseNeverTakesALeaseTakenAfterItsSnapshot(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := insertRun(ctx, t, drv, "k")
	// J1: available job of the run's workflow, to be fetched (and lease the run).
	j1in := job("q1")
	j1in.Kind, j1in.RunID = "wf", r.ID
	j1 := insertJobs(ctx, t, drv, j1in)[0]
	// J2: a second job of the run, claimed without the lease (a duplicate).
	j2in := job("q2")
	j2in.Kind, j2in.RunID = "wf", r.ID
	j2 := insertJobs(ctx, t, drv, j2in)[0]
	c2, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: j2.ID, WorkerID: "w2"})
	if err != nil {
		t.Fatal(err)
	}

	// Hold the run's row with an uncommitted update (another session), so the
	// RunLease statement takes its snapshot now and then waits on the row.
	txA, err := drv.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := txA.Exec(ctx, "SELECT 1 FROM "+table(drv, "runs")+" WHERE id = $1 FOR UPDATE", r.ID); err != nil {
		t.Fatal(err)
	}
	type res struct {
		r   *acidic.Run
		ok  bool
		err error
	}
	done := make(chan res, 1)
	go func() {
		got, ok, err := drv.RunLease(ctx, storage.RunLeaseParams{ID: r.ID, Token: "tok-j2", Job: storage.JobAttempt{ID: c2.ID, Attempt: c2.Attempt}})
		done <- res{got, ok, err}
	}()
	// Wait until RunLease is blocked on the row lock.
	for i := 0; ; i++ {
		var n int
		_ = drv.Pool().QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%locked_attempt%'").Scan(&n)
		if n > 0 {
			break
		}
		if i > 500 {
			t.Fatal("RunLease never blocked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Meanwhile (same transaction, committed together, as JobFetch's leased
	// CTE does): J1 is claimed, attempt 1, and takes the lease.
	wtx := drv.WrapTx(txA)
	fetched, err := wtx.JobFetch(ctx, storage.JobFetchParams{Queue: "q1", Max: 1, WorkerID: "w1"})
	if err != nil || len(fetched) != 1 || fetched[0].LeasedRun == nil {
		t.Fatalf("fetch: %v %+v", err, fetched)
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	holder := getJob(ctx, t, drv, j1.ID)
	t.Logf("J1 state=%s attempt=%d (holds lease from fetch: %s); RunLease for J2 ok=%v, run locked_by=%s",
		holder.State, holder.Attempt, fetched[0].LeasedRun.LockedBy, got.ok, getRun(ctx, t, drv, r.ID).LockedBy)
	if got.ok && holder.State == acidic.JobRunning {
		t.Errorf("RunLease took over the lease of job %d attempt %d, which is still running", j1.ID, holder.Attempt)
	}
}

// runSteps returns a run's step log, failing the test on error.
func runSteps(ctx context.Context, t *testing.T, e storage.Executor, id uuid.UUID) []acidic.Step {
	t.Helper()
	steps, err := e.RunSteps(ctx, storage.RunStepsParams{ID: id})
	if err != nil {
		t.Fatalf("RunSteps(%s): %v", id, err)
	}
	return steps
}

// TestRunLeaseNeverTakenOverByAge: a lease whose holding attempt still runs
// is not taken over however old it is (30 days, written into locked_at);
// the conformance suite checks the rest of RunLease.
func TestRunLeaseNeverTakenOverByAge(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := insertRun(ctx, t, drv, "k")
	jobA, jobB := runningJob(ctx, t, drv, r.ID), runningJob(ctx, t, drv, r.ID)
	if _, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "a", Job: jobA}); !ok {
		t.Fatal("first lease refused")
	}
	exec(ctx, t, drv, "UPDATE {schema}.runs SET locked_at = now() - interval '30 days' WHERE id = $1", r.ID)
	if got, ok := lease(ctx, t, drv, storage.RunLeaseParams{ID: r.ID, Token: "b", Job: jobB}); ok || got.LockedBy != "a" {
		t.Fatalf("a 30-day-old lease whose attempt still runs was taken over: ok %v, locked by %q", ok, got.LockedBy)
	}
}
