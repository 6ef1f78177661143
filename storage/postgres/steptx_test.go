package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/internal/testdb"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

func stepUpdate(r *storage.Run, token, next string) storage.RunUpdate {
	return storage.RunUpdate{ID: r.ID, Token: token, State: storage.RunRunning, RecoveryPoint: next,
		Attrs: []byte(`{"n":1}`), Step: &storage.Step{Position: 0, Name: r.RecoveryPoint, State: storage.StepSucceeded, Attempt: 1, StartedAt: time.Now()}}
}

// createNotes makes a table for a step's own writes.
func createNotes(ctx context.Context, t *testing.T, drv *postgres.Driver) string {
	t.Helper()
	table := pgx.Identifier{drv.Schema(), "notes"}.Sanitize()
	if _, err := drv.Pool().Exec(ctx, "CREATE TABLE "+table+" (k text PRIMARY KEY, v integer NOT NULL DEFAULT 0)"); err != nil {
		t.Fatal(err)
	}
	return table
}

func countRows(ctx context.Context, t *testing.T, drv *postgres.Driver, query string, args ...any) int {
	t.Helper()
	var n int
	if err := drv.Pool().QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// requireIdlePool fails unless every connection went back to the pool, in a
// state that lets it run statements.
func requireIdlePool(ctx context.Context, t *testing.T, drv *postgres.Driver) {
	t.Helper()
	if n := drv.Pool().Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired", n)
	}
	if err := drv.Pool().Ping(ctx); err != nil {
		t.Fatalf("pool unusable after the step: %v", err)
	}
}

func TestInStepTxUntouchedCommitsTheUpdateAlone(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	r := leasedRun(ctx, t, drv, "k", "a")
	got, err := drv.InStepTx(ctx, func(context.Context, storage.Tx) (storage.StepCommit, error) {
		// The transaction has not begun: no connection is held.
		if n := drv.Pool().Stat().AcquiredConns(); n != 0 {
			t.Errorf("%d connections acquired while the step runs without touching its transaction", n)
		}
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.RecoveryPoint != "step2" || string(got.Attrs) != `{"n": 1}` || got.LockedBy != "a" {
		t.Fatalf("returned run: recovery point %q, attrs %s, locked by %q", got.RecoveryPoint, got.Attrs, got.LockedBy)
	}
	if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step2" {
		t.Fatalf("stored recovery point %q, want step2", now.RecoveryPoint)
	}
	steps, err := drv.RunSteps(ctx, r.ID)
	if err != nil || len(steps) != 1 || steps[0].State != storage.StepSucceeded {
		t.Fatalf("step log %+v, %v", steps, err)
	}
	requireIdlePool(ctx, t, drv)
}

func TestInStepTxCommitsTheStepsWritesWithTheUpdate(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	r := leasedRun(ctx, t, drv, "k", "a")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		ptx := postgres.PgxTx(tx)
		if _, err := ptx.Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('charged')"); err != nil {
			return storage.StepCommit{}, err
		}
		var iso string
		if err := ptx.QueryRow(ctx, "SHOW transaction_isolation").Scan(&iso); err != nil || iso != "serializable" {
			return storage.StepCommit{}, fmt.Errorf("isolation %q (%v), want serializable", iso, err)
		}
		// The engine owns the end of the transaction.
		if err := ptx.Commit(ctx); !errors.Is(err, postgres.ErrStepTxOwned) {
			return storage.StepCommit{}, fmt.Errorf("Commit inside a step: %v, want ErrStepTxOwned", err)
		}
		if err := tx.Rollback(ctx); !errors.Is(err, postgres.ErrStepTxOwned) {
			return storage.StepCommit{}, fmt.Errorf("Rollback inside a step: %v, want ErrStepTxOwned", err)
		}
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 1 {
		t.Fatalf("%d rows written by the step, want 1", n)
	}
	requireIdlePool(ctx, t, drv)
}

// A step whose run was taken over must not commit anything, although its
// COMMIT is sent in the same round trip as the fenced update.
func TestInStepTxLeaseLostRollsBackTheStep(t *testing.T) {
	t.Parallel()
	for _, touched := range []bool{false, true} {
		t.Run(fmt.Sprintf("touched=%v", touched), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			drv := testdb.New(t, testdb.Options{})
			notes := createNotes(ctx, t, drv)
			r := leasedRun(ctx, t, drv, "k", "a")
			calls := 0
			_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
				calls++
				if touched {
					if _, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('charged')"); err != nil {
						return storage.StepCommit{}, err
					}
				}
				return storage.StepCommit{Update: stepUpdate(r, "b", "step2")}, nil
			})
			if !errors.Is(err, storage.ErrLeaseLost) {
				t.Fatalf("err = %v, want ErrLeaseLost", err)
			}
			if calls != 1 {
				t.Errorf("step function ran %d times, want 1 (a lost lease is not retried)", calls)
			}
			if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 0 {
				t.Errorf("%d rows of the step committed", n)
			}
			if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step1" || now.LockedBy != "a" {
				t.Errorf("run changed: recovery point %q, locked by %q", now.RecoveryPoint, now.LockedBy)
			}
			if steps, _ := drv.RunSteps(ctx, r.ID); len(steps) != 0 {
				t.Errorf("step log written: %+v", steps)
			}
			requireIdlePool(ctx, t, drv)
		})
	}
}

func TestInStepTxErrorAndPanicRollBack(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	r := leasedRun(ctx, t, drv, "k", "a")
	write := func(ctx context.Context, tx storage.Tx) {
		if _, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('x')"); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("card declined")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		write(ctx, tx)
		return storage.StepCommit{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the step's error", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "step panicked" {
				t.Fatalf("recovered %v, want the step's panic", p)
			}
		}()
		_, _ = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			write(ctx, tx)
			panic("step panicked")
		})
	}()
	// Then runs after the update in the same transaction; its error rolls
	// back the update too.
	_, err = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2"), Then: func(ctx context.Context, tx storage.Tx, got *storage.Run) error {
			if got.RecoveryPoint != "step2" {
				t.Errorf("Then saw recovery point %q, want step2", got.RecoveryPoint)
			}
			write(ctx, tx)
			return boom
		}}, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err from Then = %v, want its error", err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 0 {
		t.Errorf("%d rows committed by failed steps", n)
	}
	if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step1" {
		t.Errorf("recovery point %q after failed steps, want step1", now.RecoveryPoint)
	}
	requireIdlePool(ctx, t, drv)

	// And a Then that succeeds commits with the update.
	_, err = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		return storage.StepCommit{Update: stepUpdate(r, "a", "step2"), Then: func(ctx context.Context, tx storage.Tx, _ *storage.Run) error {
			write(ctx, tx)
			return nil
		}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(ctx, t, drv, "SELECT count(*) FROM "+notes); n != 1 {
		t.Errorf("%d rows after a step with Then, want 1", n)
	}
	requireIdlePool(ctx, t, drv)
}

// Two steps in write skew (each reads both rows and writes one): SERIALIZABLE
// fails one of them, and InStepTx runs its function again.
func TestInStepTxRetriesSerializationFailures(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	notes := createNotes(ctx, t, drv)
	if _, err := drv.Pool().Exec(ctx, "INSERT INTO "+notes+" (k) VALUES ('a'), ('b')"); err != nil {
		t.Fatal(err)
	}
	retries0 := drv.Stats().TxRetries
	var calls atomic.Int32
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	step := func(key, token string, r *storage.Run) error {
		var once sync.Once
		_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			calls.Add(1)
			ptx := postgres.PgxTx(tx)
			var sum int
			if err := ptx.QueryRow(ctx, "SELECT sum(v) FROM "+notes).Scan(&sum); err != nil {
				return storage.StepCommit{}, err
			}
			once.Do(func() { bothRead.Done(); bothRead.Wait() })
			if _, err := ptx.Exec(ctx, "UPDATE "+notes+" SET v = $2 WHERE k = $1", key, sum+1); err != nil {
				return storage.StepCommit{}, err
			}
			return storage.StepCommit{Update: stepUpdate(r, token, "step2")}, nil
		})
		return err
	}
	ra := leasedRun(ctx, t, drv, "ka", "a")
	rb := leasedRun(ctx, t, drv, "kb", "b")
	errs := make(chan error, 2)
	go func() { errs <- step("a", "a", ra) }()
	go func() { errs <- step("b", "b", rb) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if calls.Load() < 3 || drv.Stats().TxRetries == retries0 {
		t.Fatalf("%d calls, %d retries; want a serialization failure retried", calls.Load(), drv.Stats().TxRetries-retries0)
	}
	// Serial order: the second step saw the first one's write.
	if sum := countRows(ctx, t, drv, "SELECT sum(v) FROM "+notes); sum != 3 {
		t.Fatalf("sum = %d, want 3 (1, then 1+1)", sum)
	}
	for _, r := range []*storage.Run{ra, rb} {
		if now := getRun(ctx, t, drv, r.ID); now.RecoveryPoint != "step2" {
			t.Errorf("run %s at %q, want step2", r.IdempotencyKey, now.RecoveryPoint)
		}
	}
	requireIdlePool(ctx, t, drv)
}

// The fetch leases the run of a workflow job when the lease is free, and
// leaves a run alone that another attempt holds.
func TestJobFetchLeasesFreeRuns(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := testdb.New(t, testdb.Options{})
	free := insertRun(ctx, t, drv, "free")
	held := leasedRun(ctx, t, drv, "held", "other")
	q := "fetch_" + uuid.NewString()
	var in []storage.JobInsert
	for _, r := range []*storage.Run{free, held} {
		j := job(q)
		j.RunID = r.ID
		in = append(in, j)
	}
	in = append(in, job(q)) // a plain job
	insertJobs(ctx, t, drv, in...)
	jobs, err := drv.JobFetch(ctx, storage.JobFetch{Queue: q, Max: 10, WorkerID: "w"})
	if err != nil || len(jobs) != 3 {
		t.Fatalf("JobFetch: %d jobs, %v", len(jobs), err)
	}
	byRun := map[uuid.UUID]*storage.Job{}
	for _, j := range jobs {
		byRun[j.RunID] = j
	}
	if j := byRun[uuid.Nil]; j.LeasedRun != nil {
		t.Errorf("plain job came with a leased run: %+v", j.LeasedRun)
	}
	if j := byRun[held.ID]; j.LeasedRun != nil {
		t.Errorf("job of a run held by another attempt came with its lease: %+v", j.LeasedRun)
	}
	j := byRun[free.ID]
	if j.LeasedRun == nil || j.LeasedRun.ID != free.ID || j.LeasedRun.State != storage.RunRunning || j.LeasedRun.LockedBy == "" {
		t.Fatalf("job of a free run: leased run %+v", j.LeasedRun)
	}
	stored := getRun(ctx, t, drv, free.ID)
	if stored.LockedBy != j.LeasedRun.LockedBy || stored.State != storage.RunRunning || string(stored.Args) != string(free.Args) {
		t.Fatalf("stored run: locked by %q (fetch said %q), state %s, args %s", stored.LockedBy, j.LeasedRun.LockedBy, stored.State, stored.Args)
	}
	// The lease is the attempt's: the fenced update works with its token,
	// and cancelling the attempt frees it.
	if _, err := drv.RunUpdate(ctx, stepUpdate(stored, j.LeasedRun.LockedBy, "step2")); err != nil {
		t.Fatalf("RunUpdate with the fetch's token: %v", err)
	}
	if _, err := drv.JobCancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if now := getRun(ctx, t, drv, free.ID); now.LockedBy != "" || now.State != storage.RunPending {
		t.Fatalf("after the attempt was cancelled: locked by %q, state %s", now.LockedBy, now.State)
	}
}
