package run_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/storage"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func insert(key, workflow, args string) storage.RunInsertParams {
	return storage.RunInsertParams{
		ID:             uuid.New(),
		IdempotencyKey: key,
		Workflow:       workflow,
		Args:           json.RawMessage(args),
		Queue:          "default",
		RecoveryPoint:  "one",
		DefinitionHash: "h",
	}
}

func countRuns(t *testing.T, drv storage.Driver) int {
	t.Helper()
	return testdb.Count(t, drv, "runs", "")
}

func TestCreate(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)

		first, created, err := run.Create(ctx, drv, insert("k1", "pay", `{ "b": [1, 2], "a": 1.0 }`))
		if err != nil || !created {
			t.Fatalf("Create: %v created=%v", err, created)
		}
		if same, err := run.SameArgs(first.Args, json.RawMessage(`{"a":1.0,"b":[1,2]}`)); err != nil || !same {
			t.Errorf("stored args %s, want the value {\"a\":1.0,\"b\":[1,2]} (%v)", first.Args, err)
		}

		// Same key, same value written differently: the existing run.
		again, created, err := run.Create(ctx, drv, insert("k1", "pay", `{"a":1.0,"b":[1,2]}`))
		if err != nil || created || again.ID != first.ID {
			t.Fatalf("Create again: run %v created=%v err=%v, want run %s, not created", again, created, err, first.ID)
		}

		// Same key, other value.
		if r, _, err := run.Create(ctx, drv, insert("k1", "pay", `{"a":2,"b":[1,2]}`)); !errors.Is(err, run.ErrMismatchedArgs) {
			t.Errorf("other args: run %v err %v, want ErrMismatchedArgs", r, err)
		}
		// Same key and args, another workflow.
		if r, _, err := run.Create(ctx, drv, insert("k1", "refund", `{"a":1.0,"b":[1,2]}`)); !errors.Is(err, run.ErrMismatchedArgs) {
			t.Errorf("other workflow: run %v err %v, want ErrMismatchedArgs", r, err)
		}
		// Invalid arguments are refused before anything is written.
		if _, _, err := run.Create(ctx, drv, insert("k2", "pay", `{"a":`)); !errors.Is(err, run.ErrArgs) {
			t.Errorf("invalid args: err %v, want ErrArgs", err)
		}
		if n := countRuns(t, drv); n != 1 {
			t.Errorf("%d runs, want 1", n)
		}
	})
}

// runningJob inserts a job of the run and claims it without leasing the
// run, so a lease can point at a running attempt of the run's job.
func runningJob(t *testing.T, drv storage.Driver, runID uuid.UUID) storage.JobAttempt {
	t.Helper()
	ctx := ctxT(t)
	jobs, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{{Queue: "q_" + uuid.NewString(), Kind: "k", Args: json.RawMessage("{}"),
		RunID: runID, State: acidic.JobAvailable, MaxAttempts: 3}}})

	if err != nil {
		t.Fatal(err)
	}
	j, err := drv.JobClaim(ctx, storage.JobClaimParams{ID: jobs[0].ID, WorkerID: "w"})
	if err != nil {
		t.Fatalf("JobClaim: %v", err)
	}
	return storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}
}

func TestAcquire(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		rec, _, err := run.Create(ctx, drv, insert("k", "pay", `{}`))
		if err != nil {
			t.Fatal(err)
		}

		a := run.NewLease(runningJob(t, drv, rec.ID))
		b := run.NewLease(runningJob(t, drv, rec.ID))
		if a.Token == "" || a.Token == b.Token {
			t.Fatalf("lease tokens %q and %q", a.Token, b.Token)
		}
		got, err := run.Acquire(ctx, drv, rec.ID, a)
		if err != nil {
			t.Fatalf("Acquire a: %v", err)
		}
		if got.State != acidic.RunRunning || got.LockedBy != a.Token {
			t.Fatalf("after Acquire: state %s locked by %q", got.State, got.LockedBy)
		}

		// A live lease blocks b.
		held, err := run.Acquire(ctx, drv, rec.ID, b)
		if !errors.Is(err, run.ErrLocked) {
			t.Fatalf("Acquire b while a holds a live lease: err %v, want ErrLocked", err)
		}
		if held == nil || held.LockedBy != a.Token {
			t.Fatalf("ErrLocked should come with the run as it is, got %+v", held)
		}
		// Only a's token may write.
		if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: rec.ID, Token: b.Token, State: acidic.RunRunning, RecoveryPoint: "two"}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Fatalf("RunUpdate with b's token: err %v, want ErrLeaseLost", err)
		}

		// However old a's lease, b cannot take it while a's attempt runs.
		if n := testdb.Exec(t, drv, "UPDATE "+testdb.Table(drv, "runs")+" SET locked_at = "+testdb.Earlier(drv, "now()", 24*time.Hour)+" WHERE id = $1", rec.ID); n != 1 {
			t.Fatalf("aged %d runs' lease, want 1", n)
		}
		if _, err := run.Acquire(ctx, drv, rec.ID, b); !errors.Is(err, run.ErrLocked) {
			t.Fatalf("Acquire b while a's attempt runs, with a day-old lease: err %v, want ErrLocked", err)
		}
		// Once a's attempt has ended, b takes the lease over and a's writes are
		// fenced off.
		if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{a.Job}}); err != nil {
			t.Fatal(err)
		}
		got, err = run.Acquire(ctx, drv, rec.ID, b)
		if err != nil || got.LockedBy != b.Token {
			t.Fatalf("Acquire b after a's attempt ended: %v (locked by %q)", err, got.LockedBy)
		}
		if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: rec.ID, Token: a.Token, State: acidic.RunRunning, RecoveryPoint: "two"}); !errors.Is(err, acidic.ErrLeaseLost) {
			t.Fatalf("RunUpdate with a's stale token: err %v, want ErrLeaseLost", err)
		}

		// A lease whose job attempt is no longer running is defunct at once.
		if _, err := drv.JobCancel(ctx, storage.JobCancelParams{ID: b.Job.ID}); err != nil {
			t.Fatal(err)
		}
		c := run.NewLease(runningJob(t, drv, rec.ID))
		if got, err := run.Acquire(ctx, drv, rec.ID, c); err != nil || got.LockedBy != c.Token {
			t.Fatalf("Acquire c after b's job was cancelled: %v", err)
		}

		// A finished run cannot be acquired.
		if _, err := drv.RunUpdate(ctx, storage.RunUpdateParams{ID: rec.ID, Token: c.Token, State: acidic.RunSucceeded, RecoveryPoint: "one", Release: true}); err != nil {
			t.Fatal(err)
		}
		d := run.NewLease(runningJob(t, drv, rec.ID))
		fin, err := run.Acquire(ctx, drv, rec.ID, d)
		if !errors.Is(err, run.ErrFinished) || fin == nil || fin.State != acidic.RunSucceeded {
			t.Fatalf("Acquire a succeeded run: %+v, %v; want ErrFinished with the run", fin, err)
		}

		// An unknown run.
		if _, err := run.Acquire(ctx, drv, uuid.New(), d); !errors.Is(err, acidic.ErrNotFound) {
			t.Fatalf("Acquire unknown run: %v, want ErrNotFound", err)
		}
	})
}

// The database keeps arguments as jsonb, which rewrites some numbers (1e2 is
// stored as 100). Enqueuing the very same arguments again must still find the
// run, not report mismatched arguments.
func TestCreateSameArgsWithExponentNumbers(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		for i, args := range []string{`{"n":1e2}`, `{"f":1e+21}`, `{"f":1e-07}`, `{"z":-0}`, `{"x":1.5E3}`} {
			key := "k" + string(rune('a'+i))
			first, created, err := run.Create(ctx, drv, insert(key, "pay", args))
			if err != nil || !created {
				t.Fatalf("Create %s: %v created=%v", args, err, created)
			}
			again, created, err := run.Create(ctx, drv, insert(key, "pay", args))
			if err != nil {
				t.Errorf("Create %s again with identical args: %v (stored as %s)", args, err, first.Args)
				continue
			}
			if created || again.ID != first.ID {
				t.Errorf("Create %s again: created=%v id %s, want the existing run %s", args, created, again.ID, first.ID)
			}
		}
	})
}

// TestCreateRefusesArgsJsonbCannotHold: arguments are checked as given, before
// they are made canonical (which would turn invalid UTF-8 into U+FFFD and
// store it silently): invalid UTF-8, \u0000 and lone surrogates are
// acidic.ErrInvalid, and nothing is written.
func TestCreateRefusesArgsJsonbCannotHold(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		for _, args := range []string{"{\"name\":\"\xff\"}", `{"name":"\u0000"}`, `["\ud800"]`, `1e-20000`} {
			if _, _, err := run.Create(ctx, drv, insert("k", "pay", args)); !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("args %q: err %v, want acidic.ErrInvalid", args, err)
			}
		}
		if n := countRuns(t, drv); n != 0 {
			t.Errorf("refused args wrote %d runs", n)
		}
	})
}
