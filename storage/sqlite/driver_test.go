package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openFile opens a driver on the file at path, closed when t ends.
func openFile(t *testing.T, path string, opts sqlite.Options) *sqlite.Driver {
	t.Helper()
	drv, err := sqlite.Open(testCtx(t), path, opts)
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = drv.Close() })
	return drv
}

// execSQL runs SQL of the test's own in a transaction of drv.
func execSQL(t *testing.T, drv *sqlite.Driver, query string, args ...any) {
	t.Helper()
	err := drv.InTx(testCtx(t), storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		_, err := sqlite.SQLTx(tx).ExecContext(ctx, query, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// leased inserts a run with a claimed job and leases the run to it.
func leased(t *testing.T, drv *sqlite.Driver, key string) *acidic.Run {
	t.Helper()
	ctx := testCtx(t)
	r, _, err := drv.RunInsert(ctx, storage.RunInsertParams{ID: newID(), IdempotencyKey: key, Workflow: "wf",
		Args: json.RawMessage(`{}`), Queue: "q", RecoveryPoint: "s1", DefinitionHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "lease-" + key, Kind: "other",
		Args: json.RawMessage(`{}`), RunID: r.ID, State: acidic.JobAvailable, MaxAttempts: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: jobs[0].ID, WorkerID: "w"})
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := drv.RunLease(ctx, storage.RunLeaseParams{ID: r.ID, Token: "token-" + key, Job: storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}})
	if err != nil || !ok {
		t.Fatalf("RunLease(%s) = %v, %v", key, ok, err)
	}
	return got
}

func stepCommit(r *acidic.Run, next string) storage.StepCommit {
	return storage.StepCommit{Update: storage.RunUpdateParams{ID: r.ID, Token: r.LockedBy, State: acidic.RunRunning,
		RecoveryPoint: next, Attrs: json.RawMessage(`{}`),
		Step: &acidic.Step{Position: 0, Name: r.RecoveryPoint, State: acidic.StepSucceeded, Attempt: 1, StartedAt: time.Now()}}}
}

// TestStepBodyRunsOnce: step transactions of two driver values on one file
// (as of two processes) that each read a counter, wait, and write it back
// one higher never run a step's body twice and lose no increment. Every
// write transaction takes the write lock at its BEGIN (BEGIN IMMEDIATE):
// with a deferred BEGIN the two would both read, and the second to write
// would fail its lock upgrade (SQLITE_BUSY) and run its body again.
func TestStepBodyRunsOnce(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "acidic.db")
	a := openFile(t, path, sqlite.Options{Migrate: true})
	b := openFile(t, path, sqlite.Options{})
	execSQL(t, a, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)")

	const steps = 8
	var bodies atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, steps)
	for i := range steps {
		drv := a
		if i%2 == 1 {
			drv = b
		}
		r := leased(t, a, "run"+string(rune('a'+i)))
		wg.Go(func() {
			_, errs[i] = drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
				bodies.Add(1)
				var n int
				if err := sqlite.SQLTx(tx).QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n); err != nil {
					return storage.StepCommit{}, err
				}
				time.Sleep(20 * time.Millisecond) // the others read meanwhile, if they can
				if _, err := sqlite.SQLTx(tx).ExecContext(ctx, "UPDATE counter SET n = ? WHERE id = 1", n+1); err != nil {
					return storage.StepCommit{}, err
				}
				return stepCommit(r, "s2"), nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("step %d: %v", i, err)
		}
	}
	if got := bodies.Load(); got != steps {
		t.Errorf("step bodies ran %d times for %d steps", got, steps)
	}
	if retries := a.Stats().TxRetries + b.Stats().TxRetries; retries != 0 {
		t.Errorf("%d transactions were run again", retries)
	}
	var n int
	err := a.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		return sqlite.SQLTx(tx).QueryRowContext(ctx, "SELECT n FROM counter WHERE id = 1").Scan(&n)
	})
	if err != nil || n != steps {
		t.Errorf("counter = %d, %v; want %d", n, err, steps)
	}
}

// TestOpenRefusesNewerStore: a file on which a newer build applied a
// version this build does not know is refused at Open, with the version
// named, migrating or not, and nothing is written.
func TestOpenRefusesNewerStore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "acidic.db")
	drv := openFile(t, path, sqlite.Options{Migrate: true})
	execSQL(t, drv, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from_the_future', 0)")
	if err := drv.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		_, err := sqlite.Open(testCtx(t), path, sqlite.Options{Migrate: migrate})
		var newer *migrations.NewerStoreError
		if !errors.As(err, &newer) || len(newer.Versions()) != 1 || newer.Versions()[0] != 99 {
			t.Fatalf("Open(Migrate %v) = %v, want a NewerStoreError naming version 99", migrate, err)
		}
		if !strings.Contains(err.Error(), "99_from_the_future") {
			t.Errorf("the error %q does not name the version", err)
		}
	}
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
		t.Errorf("refused opens changed the file (%v)", err)
	}
}

// TestOpenBadPath: a path that cannot be opened is refused before anything
// is created.
func TestOpenBadPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, path := range map[string]string{
		"missing directory": filepath.Join(dir, "no", "such", "dir", "acidic.db"),
		"a directory":       dir,
		"empty":             "",
		"in memory":         ":memory:",
	} {
		_, err := sqlite.Open(testCtx(t), path, sqlite.Options{Migrate: true})
		var oe *sqlite.OpenError
		if !errors.Is(err, sqlite.ErrCannotOpen) || !errors.As(err, &oe) || oe.Path != path {
			t.Errorf("%s: Open(%q) = %v, want an OpenError matching ErrCannotOpen", name, path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused open created a directory: %v", err)
	}
	// A file in a directory the process may not write.
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		if _, err := sqlite.Open(testCtx(t), filepath.Join(ro, "acidic.db"), sqlite.Options{}); !errors.Is(err, sqlite.ErrCannotOpen) {
			t.Errorf("Open in a read-only directory = %v, want ErrCannotOpen", err)
		}
	}
}

// TestOpenNotADatabase: a file that is not a SQLite database is refused,
// and left as it was.
func TestOpenNotADatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "notes.txt")
	content := bytes.Repeat([]byte("these are my notes, not a database\n"), 200)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(testCtx(t), path, sqlite.Options{Migrate: true})
	var oe *sqlite.OpenError
	if !errors.Is(err, sqlite.ErrNotADatabase) || !errors.As(err, &oe) {
		t.Fatalf("Open(a text file) = %v, want an OpenError matching ErrNotADatabase", err)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
		t.Errorf("the refused file changed (%v)", err)
	}
}

// TestNotifyOnCommitOnlyInStepsAndBegin: notifications of a step's
// transaction or of a caller's transaction (Begin) are delivered when it
// commits, and never when it rolls back; they reach the listeners of this
// driver value only.
func TestNotifyOnCommitOnlyInStepsAndBegin(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "acidic.db")
	drv := openFile(t, path, sqlite.Options{Migrate: true})
	other := openFile(t, path, sqlite.Options{})
	r := leased(t, drv, "r")
	l, err := drv.NewListener(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	lo, err := other.NewListener(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close(ctx)
	for _, li := range []storage.Listener{l, lo} {
		if err := li.Listen(ctx, storage.TopicInsert); err != nil {
			t.Fatal(err)
		}
	}
	job := func(q string) storage.JobInsertManyParams {
		return storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: q, Kind: "k", Args: json.RawMessage(`{}`),
			State: acidic.JobAvailable, MaxAttempts: 1}}}
	}

	// A step whose lease was lost rolls back: its wake-up is dropped.
	lost := stepCommit(r, "s2")
	lost.Update.Token = "not the holder"
	if _, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		_, err := tx.JobInsertMany(ctx, job("step_rolled_back"))
		return lost, err
	}); !errors.Is(err, acidic.ErrLeaseLost) {
		t.Fatalf("InStepTx with a lost lease = %v", err)
	}
	// A caller's transaction rolled back.
	tx, err := drv.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.JobInsertMany(ctx, job("begin_rolled_back")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Committed ones.
	if _, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		_, err := tx.JobInsertMany(ctx, job("step_committed"))
		return stepCommit(r, "s2"), err
	}); err != nil {
		t.Fatal(err)
	}
	tx, err = drv.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.JobInsertMany(ctx, job("begin_committed")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Errorf("Rollback after Commit = %v, want nil", err)
	}
	for _, want := range []string{"step_committed", "begin_committed"} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := l.Wait(wctx)
		cancel()
		if err != nil || n.Payload != want {
			t.Fatalf("notification = %+v, %v; want the wake-up of %s", n, err, want)
		}
	}
	for name, li := range map[string]storage.Listener{"this driver": l, "another driver on the file": lo} {
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		n, err := li.Wait(wctx)
		cancel()
		if err == nil {
			t.Errorf("%s: unexpected notification %+v", name, n)
		}
	}
	// Closing the driver ends its listeners.
	if err := drv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Wait(ctx); !errors.Is(err, acidic.ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
	if _, err := drv.NewListener(ctx); !errors.Is(err, acidic.ErrClosed) {
		t.Errorf("NewListener after Close = %v, want ErrClosed", err)
	}
	if _, err := drv.JobGet(ctx, storage.JobGetParams{ID: 1}); !errors.Is(err, acidic.ErrClosed) {
		t.Errorf("JobGet after Close = %v, want ErrClosed", err)
	}
	if _, err := drv.JobInsertMany(ctx, job("closed")); !errors.Is(err, acidic.ErrClosed) {
		t.Errorf("JobInsertMany after Close = %v, want ErrClosed", err)
	}
}

// TestNestedWriteIsRefused: a write on the driver with the context of one
// of its own write transactions fails at once with ErrNestedWrite instead
// of waiting for its own transaction; the transaction itself carries on.
func TestNestedWriteIsRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{BusyTimeout: 30 * time.Second})
	job := storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "q", Kind: "k", Args: json.RawMessage(`{}`),
		State: acidic.JobAvailable, MaxAttempts: 1}}}
	start := time.Now()
	err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.JobInsertMany(ctx, job); err != nil {
			return err
		}
		if _, err := drv.JobInsertMany(ctx, job); !errors.Is(err, sqlite.ErrNestedWrite) {
			t.Errorf("a write on the driver inside its transaction = %v, want ErrNestedWrite", err)
		}
		// Reads on the driver are fine: they see what was committed.
		if jobs, err := drv.JobList(ctx, acidic.JobFilter{}); err != nil || len(jobs) != 0 {
			t.Errorf("a read on the driver inside its transaction = %d jobs, %v; want none yet", len(jobs), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("the nested write waited %v", waited)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{}); err != nil || len(jobs) != 1 {
		t.Errorf("after the transaction: %d jobs, %v; want its one", len(jobs), err)
	}
	// The engine's transactions are the driver's to end.
	err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		if err := tx.Commit(ctx); !errors.Is(err, sqlite.ErrTxOwned) {
			t.Errorf("Commit inside InTx = %v, want ErrTxOwned", err)
		}
		if err := tx.Rollback(ctx); !errors.Is(err, sqlite.ErrTxOwned) {
			t.Errorf("Rollback inside InTx = %v, want ErrTxOwned", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRolledBackBySQLite: when SQLite rolls a transaction back by itself
// (here a statement interrupted because its context ended), nothing after
// it runs outside the transaction: the step fails with ErrTxDone and none
// of its writes, nor its progress, is committed.
func TestRolledBackBySQLite(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{})
	execSQL(t, drv, "CREATE TABLE sink (x INTEGER)")
	r := leased(t, drv, "r")
	_, err := drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
		if _, err := tx.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "staged",
			Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1}}}); err != nil {
			return storage.StepCommit{}, err
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := sqlite.SQLTx(tx).ExecContext(short,
			"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) INSERT INTO sink SELECT x FROM c")
		if err == nil {
			t.Error("the endless INSERT finished")
		}
		// The step goes on as if the error did not matter.
		return stepCommit(r, "s2"), nil
	})
	if !errors.Is(err, sqlite.ErrTxDone) {
		t.Errorf("InStepTx after SQLite rolled back = %v, want ErrTxDone", err)
	}
	if got, err := drv.RunGet(ctx, storage.RunGetParams{ID: r.ID}); err != nil || got.RecoveryPoint != "s1" {
		t.Errorf("run = %+v, %v; want it still at s1", got, err)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: "staged"}); err != nil || len(jobs) != 0 {
		t.Errorf("%d staged jobs committed (%v), want none", len(jobs), err)
	}
	// The driver works on.
	if _, err := drv.InStepTx(ctx, func(context.Context, storage.Tx) (storage.StepCommit, error) {
		return stepCommit(r, "s2"), nil
	}); err != nil {
		t.Fatalf("the next step: %v", err)
	}
}

// TestUniqueStatesMatchTheIndex: for every job state, the query that finds
// the job holding a unique key (JobInsertUnique) and the unique index
// agree on whether a job in that state holds its key: a job whose mask
// covers its state is a duplicate, and one whose mask does not lets a new
// job in (the index would refuse it otherwise).
func TestUniqueStatesMatchTheIndex(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{})
	for _, s := range acidic.AllJobStates {
		key := []byte("key-" + string(s))
		in := storage.JobInsert{Queue: "q", Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1,
			UniqueKey: key, UniqueStates: acidic.NewJobStates(s)}
		first, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: in})
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, drv, "UPDATE jobs SET state = ? WHERE id = ?", string(s), first.ID)
		if dup, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: in}); err != nil || !dup.Duplicate || dup.ID != first.ID {
			t.Errorf("%s: insert over a job in a state its mask covers = %+v, %v; want it, duplicate", s, dup, err)
		}
		other := in
		other.UniqueStates = acidic.NewJobStates(acidic.AllJobStates...) &^ acidic.NewJobStates(s)
		execSQL(t, drv, "UPDATE jobs SET unique_states = 255 & ~unique_states WHERE id = ?", first.ID)
		got, err := drv.JobInsertUnique(ctx, storage.JobInsertUniqueParams{Job: other})
		if err != nil || got.Duplicate {
			t.Errorf("%s: insert over a job whose mask does not cover its state = %+v, %v; want a new job", s, got, err)
		}
	}
}

// TestFailedMethodFailsTheTransaction: a method that fails inside a
// transaction after writing part of its work (here the second job of a
// batch breaks a unique key) makes the transaction roll back, as an error
// aborts a PostgreSQL transaction: committing it anyway fails, and nothing
// of it is stored.
func TestFailedMethodFailsTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{})
	uniq := storage.JobInsert{Queue: "q", Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1,
		UniqueKey: []byte("k"), UniqueStates: acidic.NewJobStates(acidic.JobAvailable)}
	if _, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{uniq}}); err != nil {
		t.Fatal(err)
	}
	plain := uniq
	plain.UniqueKey, plain.UniqueStates, plain.Queue = nil, 0, "batch"
	err := drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{plain, uniq}}); !errors.Is(err, acidic.ErrConflict) {
			t.Errorf("batch with a duplicate = %v, want ErrConflict", err)
		}
		return nil // and commit anyway
	})
	if !errors.Is(err, sqlite.ErrTxDone) || !errors.Is(err, acidic.ErrConflict) {
		t.Errorf("committing after a failed batch = %v, want ErrTxDone naming the conflict", err)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: "batch"}); err != nil || len(jobs) != 0 {
		t.Errorf("%d jobs of the failed batch stored (%v), want none", len(jobs), err)
	}
}

// TestRefusalLeavesTheTransaction: a method refused on what it read, before
// it wrote anything (RunDelete of a run still in use), leaves the caller's transaction as it was: it commits,
// with the writes made before the refusal, as on PostgreSQL.
func TestRefusalLeavesTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{})
	run, _, err := drv.RunInsert(ctx, storage.RunInsertParams{ID: newID(), IdempotencyKey: "k", Workflow: "wf",
		Args: json.RawMessage(`{}`), Queue: "q", RecoveryPoint: "start", DefinitionHash: "h"})
	if err != nil {
		t.Fatal(err)
	}
	job := storage.JobInsert{Queue: "kept", Kind: "k", Args: json.RawMessage(`{}`), State: acidic.JobAvailable, MaxAttempts: 1}
	err = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		if _, err := tx.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{job}}); err != nil {
			return err
		}
		if _, err := tx.RunDelete(ctx, storage.RunDeleteParams{ID: run.ID}); !errors.Is(err, acidic.ErrInUse) {
			t.Errorf("RunDelete of a pending run = %v, want ErrInUse", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the transaction did not commit after the refusals: %v", err)
	}
	if jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: "kept"}); err != nil || len(jobs) != 1 {
		t.Errorf("%d jobs of the transaction stored (%v), want 1", len(jobs), err)
	}
}
