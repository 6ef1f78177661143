package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// groupFile opens a driver on a new file with a table t of the test's own,
// and a connection of the test's own to read what is committed.
func groupFile(t *testing.T) (*sqlite.Driver, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "group.db")
	d := openFile(t, path, sqlite.Options{Migrate: true})
	ctx := testCtx(t)
	err := d.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		_, err := sqlite.SQLTx(tx).ExecContext(ctx, "CREATE TABLE t (v TEXT NOT NULL)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return d, db
}

func committed(t *testing.T, db *sql.DB, v string) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE v = ?", v).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// writer runs InTx: it inserts v, signals held, waits for release, and
// returns ret. Its result arrives on the returned channel.
func writer(ctx context.Context, d *sqlite.Driver, v string, held chan<- struct{}, release <-chan struct{}, ret error, calls *atomic.Int32) <-chan error {
	out := make(chan error, 1)
	go func() {
		out <- d.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
			if calls != nil {
				calls.Add(1)
			}
			if _, err := sqlite.SQLTx(tx).ExecContext(ctx, "INSERT INTO t VALUES (?)", v); err != nil {
				return err
			}
			if held != nil && (calls == nil || calls.Load() == 1) {
				held <- struct{}{}
			}
			if release != nil {
				<-release
			}
			return ret
		})
	}()
	return out
}

func waitWaiting(t *testing.T, d *sqlite.Driver, n int32) {
	t.Helper()
	for sqlite.Waiting(d) < n {
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: transactions that end while others wait for the writer
// commit together, in one COMMIT: none returns, nor is visible to readers,
// before that COMMIT; the one that fails rolls back its own writes only;
// the others all commit.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	d, db := groupFile(t)
	ctx := testCtx(t)
	groups := sqlite.Groups(d)

	heldA, releaseA := make(chan struct{}), make(chan struct{})
	a := writer(ctx, d, "a", heldA, releaseA, nil, nil)
	<-heldA
	heldB, releaseB := make(chan struct{}), make(chan struct{})
	b := writer(ctx, d, "b", heldB, releaseB, nil, nil)
	waitWaiting(t, d, 1)
	failure := errors.New("c fails")
	c := writer(ctx, d, "c", nil, nil, failure, nil)
	waitWaiting(t, d, 2)

	close(releaseA) // a ends while b and c wait: it hands the transaction to b
	<-heldB
	select {
	case err := <-a:
		t.Fatalf("a returned (%v) before the COMMIT of its group", err)
	default:
	}
	if n := committed(t, db, "a"); n != 0 {
		t.Fatalf("a reader sees a's row before its group committed")
	}
	close(releaseB) // b hands over to c, which fails and commits the group
	for name, ch := range map[string]<-chan error{"a": a, "b": b} {
		if err := <-ch; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := <-c; !errors.Is(err, failure) {
		t.Errorf("c: %v, want its own error", err)
	}
	for v, want := range map[string]int{"a": 1, "b": 1, "c": 0} {
		if n := committed(t, db, v); n != want {
			t.Errorf("%d rows %q, want %d", n, v, want)
		}
	}
	if n := sqlite.Groups(d) - groups; n != 1 {
		t.Errorf("%d COMMITs for the three transactions, want 1", n)
	}
}

// TestGroupLost: when SQLite rolls back the open transaction by itself (a
// statement interrupted as its context ended), the transactions that ended
// in it before are not committed; they learn it with an error matching
// acidic.ErrSerialization, and InTx runs them again.
func TestGroupLost(t *testing.T) {
	t.Parallel()
	d, db := groupFile(t)
	ctx := testCtx(t)

	heldA, releaseA := make(chan struct{}), make(chan struct{})
	var callsA atomic.Int32
	a := writer(ctx, d, "a", heldA, releaseA, nil, &callsA)
	<-heldA
	startedB := make(chan struct{})
	b := make(chan error, 1)
	go func() {
		b <- d.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
			close(startedB)
			// A write long enough to be interrupted: SQLite then rolls the
			// whole transaction back, a's row with it.
			sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := sqlite.SQLTx(tx).ExecContext(sctx, `INSERT INTO t (v)
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 1000000000) SELECT 'x' FROM g`)
			return err
		})
	}()
	waitWaiting(t, d, 1)
	close(releaseA)
	<-startedB
	if err := <-b; err == nil {
		t.Fatal("the interrupted statement succeeded")
	}
	if err := <-a; err != nil {
		t.Fatalf("a: %v", err)
	}
	if n := callsA.Load(); n != 2 {
		t.Errorf("a's function ran %d times, want 2 (its group was lost)", n)
	}
	for v, want := range map[string]int{"a": 1, "x": 0} {
		if n := committed(t, db, v); n != want {
			t.Errorf("%d rows %q, want %d", n, v, want)
		}
	}
	_ = acidic.ErrSerialization
}

// TestGroupMemberCancelled: a transaction whose function returned, and
// which waits in its group for the COMMIT that another member holds back,
// gets a truthful answer when its caller's context ends meanwhile: success
// when the group then commits (its row is there), an error when the group
// is lost (its row is not, and the retry the loss would call for is not
// made with the ended context).
func TestGroupMemberCancelled(t *testing.T) {
	t.Parallel()
	for _, lost := range []bool{false, true} {
		d, db := groupFile(t)
		ctx := testCtx(t)
		actx, cancelA := context.WithCancel(ctx)
		heldA, releaseA := make(chan struct{}), make(chan struct{})
		var callsA atomic.Int32
		a := writer(actx, d, "a", heldA, releaseA, nil, &callsA)
		<-heldA
		heldB, releaseB := make(chan struct{}), make(chan struct{})
		b := make(chan error, 1)
		go func() {
			b <- d.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
				if _, err := sqlite.SQLTx(tx).ExecContext(ctx, "INSERT INTO t VALUES ('b')"); err != nil {
					return err
				}
				close(heldB)
				<-releaseB
				if !lost {
					return nil
				}
				// An interrupted statement: SQLite rolls back the whole
				// transaction, a's row with it.
				sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
				_, err := sqlite.SQLTx(tx).ExecContext(sctx, `INSERT INTO t (v)
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 1000000000) SELECT 'x' FROM g`)
				if err == nil {
					return errors.New("the interrupted statement succeeded")
				}
				return nil
			})
		}()
		waitWaiting(t, d, 1)
		close(releaseA) // a ends, hands its group to b and waits for the COMMIT
		<-heldB
		cancelA()
		close(releaseB)
		errA := <-a
		errB := <-b
		rowsA := committed(t, db, "a")
		switch {
		case !lost && (errA != nil || rowsA != 1):
			t.Errorf("group committed: a returned %v with %d rows, want success and its row", errA, rowsA)
		case lost && (errA == nil || rowsA != 0):
			t.Errorf("group lost: a returned %v with %d rows, want an error and no row", errA, rowsA)
		}
		if errA == nil && rowsA != 1 || errA != nil && rowsA != 0 {
			t.Errorf("lost=%v: a returned %v but %d of its rows committed", lost, errA, rowsA)
		}
		if n := callsA.Load(); n != 1 {
			t.Errorf("lost=%v: a's function ran %d times after its context ended, want once", lost, n)
		}
		if !lost && errB != nil {
			t.Errorf("b: %v", errB)
		}
	}
}
