package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// TestSQLOnTheDriver: outside a transaction, a query that writes is refused
// with ErrReadOnlyQuery (queries run on read-only connections) and writes
// nothing; an Exec on the driver made with the context of one of its own
// transactions fails at once with ErrNestedWrite instead of waiting for it;
// Begin's transaction runs the caller's SQL and commits it.
func TestSQLOnTheDriver(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t, sqlite.Options{BusyTimeout: 30 * time.Second})
	s := storage.SQLOf(drv)
	if _, err := s.Exec(ctx, "CREATE TABLE t (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	var k string
	err := s.QueryRow(ctx, "INSERT INTO t (k) VALUES ($1) RETURNING k", "q").Scan(&k)
	if !errors.Is(err, sqlite.ErrReadOnlyQuery) {
		t.Errorf("INSERT … RETURNING through QueryRow on the driver: %v, want ErrReadOnlyQuery", err)
	}
	if _, err := s.Query(ctx, "INSERT INTO t (k) VALUES ($1) RETURNING k", "q"); !errors.Is(err, sqlite.ErrReadOnlyQuery) {
		t.Errorf("INSERT … RETURNING through Query on the driver: %v, want ErrReadOnlyQuery", err)
	}

	start := time.Now()
	err = drv.InTx(ctx, storage.Serializable, func(ctx context.Context, tx storage.Tx) error {
		if _, err := storage.SQLOf(tx).Exec(ctx, "INSERT INTO t (k) VALUES ($1)", "in tx"); err != nil {
			return err
		}
		if _, err := s.Exec(ctx, "INSERT INTO t (k) VALUES ($1)", "nested"); !errors.Is(err, sqlite.ErrNestedWrite) {
			t.Errorf("Exec on the driver inside its transaction: %v, want ErrNestedWrite", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("the nested write waited %v", waited)
	}

	tx, err := drv.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.SQLOf(tx).QueryRow(ctx, "INSERT INTO t (k) VALUES ($1) RETURNING k", "begin").Scan(&k); err != nil || k != "begin" {
		t.Fatalf("INSERT … RETURNING in Begin's transaction = %q, %v", k, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 2 {
		t.Errorf("%d rows (%v), want 2: the transaction's and Begin's", n, err)
	}
}
