package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// A test that checks what a store holds, or plants a row the engine's API
// cannot write, runs its own SQL on the store. The helpers below run it on
// either driver: the test writes one statement in the dialect both share
// ($1 parameters, tables named through Table) and passes run ids as
// uuid.UUID and times as time.Time, which they bind as each driver stores
// them (a 16-byte blob and microseconds since the Unix epoch on SQLite).
// Where the dialects differ (now(), intervals, casts), the test asks
// IsSQLite and writes each.

// IsSQLite reports whether drv is the SQLite driver.
func IsSQLite(drv storage.Driver) bool {
	_, ok := drv.(*sqlite.Driver)
	return ok
}

// Table returns the table name of drv's store as SQL: qualified with the
// driver's schema on PostgreSQL, bare on SQLite (one file, one schema).
func Table(drv storage.Driver, name string) string {
	switch d := drv.(type) {
	case *postgres.Driver:
		return pgx.Identifier{d.Schema(), name}.Sanitize()
	case *sqlite.Driver:
		return `"` + name + `"`
	}
	panic(fmt.Sprintf("testdb: unknown driver %T", drv))
}

// sqliteArgs binds args as the SQLite driver stores them.
func sqliteArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case uuid.UUID:
			out[i] = v[:]
		case uuid.NullUUID:
			if v.Valid {
				out[i] = v.UUID[:]
			}
		case time.Time:
			out[i] = v.UnixMicro()
		default:
			out[i] = a
		}
	}
	return out
}

// ExecErr runs a statement on drv's store in a transaction of its own.
// On SQLite it is a write transaction of the driver's, so it waits for the
// one under way (a step's) to end: never call it from a step's code on
// SQLite.
func ExecErr(ctx context.Context, drv storage.Driver, q string, args ...any) (int64, error) {
	if IsSQLite(drv) {
		args = sqliteArgs(args)
	}
	return storage.SQLOf(drv).Exec(ctx, q, args...)
}

// Exec runs a statement on drv's store (see ExecErr) and fails the test if
// it fails; it returns the number of rows it affected.
func Exec(t testing.TB, drv storage.Driver, q string, args ...any) int64 {
	t.Helper()
	n, err := ExecErr(context.Background(), drv, q, args...)
	if err != nil {
		t.Fatalf("exec %q: %v", q, err)
	}
	return n
}

// TxExec runs a statement in tx, a transaction of either driver (a step's,
// say), through storage.SQLOf.
func TxExec(ctx context.Context, tx storage.Tx, q string, args ...any) error {
	_, err := storage.SQLOf(tx).Exec(ctx, q, txArgs(tx, args)...)
	return err
}

// TxQueryRow runs a query in tx, a transaction of either driver, and scans
// its one row into dest.
func TxQueryRow(ctx context.Context, tx storage.Tx, q string, args []any, dest ...any) error {
	return storage.SQLOf(tx).QueryRow(ctx, q, txArgs(tx, args)...).Scan(dest...)
}

// txArgs binds args for tx's driver: as the SQLite driver stores them in a
// transaction of SQLite's.
func txArgs(tx storage.Tx, args []any) []any {
	if sqlite.SQLTx(tx) != nil {
		return sqliteArgs(args)
	}
	return args
}

// Rows is what QueryErr hands each row to.
type Rows interface {
	Scan(dest ...any) error
}

// QueryErr runs a query on drv's store outside any transaction of the
// engine's and calls each with every row. On SQLite it reads through a
// read-only connection of its own, so it may run while a write transaction
// (a step's) is under way, and sees what was committed.
func QueryErr(ctx context.Context, drv storage.Driver, q string, args []any, each func(Rows) error) error {
	if IsSQLite(drv) {
		args = sqliteArgs(args)
	}
	rows, err := storage.SQLOf(drv).Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// QueryRowErr runs a query of one row (see QueryErr) and scans it into
// dest; no row is sql.ErrNoRows on both drivers.
func QueryRowErr(ctx context.Context, drv storage.Driver, q string, args []any, dest ...any) error {
	found := false
	err := QueryErr(ctx, drv, q, args, func(r Rows) error {
		if found {
			return nil
		}
		found = true
		return r.Scan(dest...)
	})
	if err == nil && !found {
		err = sql.ErrNoRows
	}
	return err
}

// QueryRow runs a query of one row and scans it into dest, failing the
// test if it fails.
func QueryRow(t testing.TB, drv storage.Driver, q string, args []any, dest ...any) {
	t.Helper()
	if err := QueryRowErr(context.Background(), drv, q, args, dest...); err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
}

// Count counts the rows of a table of drv's store matching where (a SQL
// condition; empty for all).
func Count(t testing.TB, drv storage.Driver, table, where string, args ...any) int {
	t.Helper()
	q := "SELECT count(*) FROM " + Table(drv, table)
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	QueryRow(t, drv, q, args, &n)
	return n
}

// Begin starts a transaction of the caller's on drv, as a user enqueuing
// with their own writes would: a pgx transaction wrapped by WrapTx on
// PostgreSQL, the driver's Begin on SQLite (which takes the write lock at
// its first statement). The test commits or rolls it back; it is rolled
// back when the test ends otherwise.
func Begin(t testing.TB, drv storage.Driver) storage.Tx {
	t.Helper()
	ctx := context.Background()
	var tx storage.Tx
	switch d := drv.(type) {
	case *postgres.Driver:
		ptx, err := d.Pool().Begin(ctx)
		if err != nil {
			t.Fatalf("testdb: begin: %v", err)
		}
		tx = d.WrapTx(ptx)
	case *sqlite.Driver:
		stx, err := d.Begin(ctx)
		if err != nil {
			t.Fatalf("testdb: begin: %v", err)
		}
		tx = stx
	default:
		t.Fatalf("testdb: unknown driver %T", drv)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}
