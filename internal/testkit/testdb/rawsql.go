package testdb

import (
	"context"
	sqlpkg "database/sql"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/storage/sqlite"
)

// Table names a table of drv's store as a statement given to Exec or
// QueryInt writes it: schema-qualified and quoted on PostgreSQL, bare on
// SQLite (one file, one schema).
func Table(drv storage.Driver, name string) string {
	if pg, ok := drv.(*postgres.Driver); ok {
		return pgx.Identifier{pg.Schema(), name}.Sanitize()
	}
	return name
}

// Exec runs a statement on drv's store in a transaction of its own and
// fails t if it fails, returning the number of rows it changed: a test's way to set a row up, or to break one, on
// either driver. Both drivers take $1, $2, ... for args; what else the
// statement may say is the database's own dialect (times, for one, are
// timestamptz on PostgreSQL and microseconds since the epoch on SQLite).
func Exec(t testing.TB, drv storage.Driver, sql string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int64
	var err error
	switch d := drv.(type) {
	case *postgres.Driver:
		var tag pgconn.CommandTag
		tag, err = d.Pool().Exec(ctx, sql, args...)
		n = tag.RowsAffected()
	case *sqlite.Driver:
		err = inSQLiteTx(ctx, d, func(q sqlite.Querier) error {
			res, err := q.ExecContext(ctx, sql, args...)
			if err == nil {
				n, err = res.RowsAffected()
			}
			return err
		})
	default:
		t.Fatalf("testdb: Exec on a %T", drv)
	}
	if err != nil {
		t.Fatalf("testdb: exec %q: %v", sql, err)
	}
	return n
}

// QueryInt runs a query whose one row holds one integer (a count, say) on
// drv's store and returns it, failing t if it fails.
func QueryInt(t testing.TB, drv storage.Driver, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	var err error
	switch d := drv.(type) {
	case *postgres.Driver:
		err = d.Pool().QueryRow(ctx, sql, args...).Scan(&n)
	case *sqlite.Driver:
		// On a read-only connection of its own, as the driver's readers
		// read: the query does not wait for the write lock, nor hold it.
		err = sqliteReader(t, d).QueryRowContext(ctx, sql, args...).Scan(&n)
	default:
		t.Fatalf("testdb: QueryInt on a %T", drv)
	}
	if err != nil {
		t.Fatalf("testdb: query %q: %v", sql, err)
	}
	return n
}

// Count returns the number of rows of a table of drv's store.
func Count(t testing.TB, drv storage.Driver, table string) int {
	t.Helper()
	return QueryInt(t, drv, "SELECT count(*) FROM "+Table(drv, table))
}

func inSQLiteTx(ctx context.Context, d *sqlite.Driver, f func(q sqlite.Querier) error) error {
	tx, err := d.Begin(ctx)
	if err != nil {
		return err
	}
	if err := f(sqlite.SQLTx(tx)); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

// Reopen returns a second driver on drv's store, with a pool or file
// handle of its own, closed when the test ends: another node of the same
// store, or a way to read it after drv was closed. On PostgreSQL it is a
// new pool on drv's schema (opts as in Pool); on SQLite a second Driver
// on the same file, which shares no in-process notifications with drv.
func Reopen(t testing.TB, drv storage.Driver, opts Options) storage.Driver {
	t.Helper()
	switch d := drv.(type) {
	case *postgres.Driver:
		return postgres.New(Pool(t, opts), postgres.Options{Schema: d.Schema()})
	case *sqlite.Driver:
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		other, err := sqlite.Open(ctx, d.Path(), sqlite.Options{})
		if err != nil {
			t.Fatalf("testdb: reopen %s: %v", d.Path(), err)
		}
		t.Cleanup(func() { _ = other.Close() })
		return other
	}
	t.Fatalf("testdb: Reopen of a %T", drv)
	return nil
}

// Close closes drv's pool (PostgreSQL) or file (SQLite), as a program
// that shuts down does, so a test can see what using it afterwards does.
func Close(t testing.TB, drv storage.Driver) {
	t.Helper()
	switch d := drv.(type) {
	case *postgres.Driver:
		d.Pool().Close()
	case *sqlite.Driver:
		if err := d.Close(); err != nil {
			t.Fatalf("testdb: close %s: %v", d.Path(), err)
		}
	default:
		t.Fatalf("testdb: Close of a %T", drv)
	}
}

// Begin starts a transaction of the caller's own on drv's store, as a user
// who enqueues together with their own writes does: on PostgreSQL a pgx
// transaction at READ COMMITTED wrapped by WrapTx, on SQLite the driver's
// Begin. It is rolled back when the test ends unless it was ended.
func Begin(t testing.TB, ctx context.Context, drv storage.Driver) storage.Tx {
	t.Helper()
	var tx storage.Tx
	switch d := drv.(type) {
	case *postgres.Driver:
		ptx, err := d.Pool().Begin(ctx)
		if err != nil {
			t.Fatalf("testdb: begin: %v", err)
		}
		tx = d.WrapTx(ptx)
	case *sqlite.Driver:
		var err error
		if tx, err = d.Begin(ctx); err != nil {
			t.Fatalf("testdb: begin: %v", err)
		}
	default:
		t.Fatalf("testdb: Begin on a %T", drv)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// ExecTx runs a statement in tx, a transaction of either driver (a step's,
// a periodic pass's, Begin's), as user code does with its own SQL.
func ExecTx(ctx context.Context, tx storage.Tx, sql string, args ...any) error {
	if ptx := postgres.PgxTx(tx); ptx != nil {
		_, err := ptx.Exec(ctx, sql, args...)
		return err
	}
	if q := sqlite.SQLTx(tx); q != nil {
		_, err := q.ExecContext(ctx, sql, args...)
		return err
	}
	return fmt.Errorf("testdb: ExecTx in a %T", tx)
}

// Dialect returns the name of drv's SQL dialect, PostgreSQL or SQLiteName,
// for a test whose statement must be written in one or the other.
func Dialect(drv storage.Driver) string {
	if _, ok := drv.(*postgres.Driver); ok {
		return PostgreSQL
	}
	return SQLiteName
}

// Earlier is SQL for the time in column (or any time expression) moved d
// into the past, in drv's dialect: an interval on PostgreSQL, microseconds
// on SQLite. "now()" names the current time on both.
func Earlier(drv storage.Driver, column string, d time.Duration) string {
	if Dialect(drv) == PostgreSQL {
		return fmt.Sprintf("%s - interval '%d microseconds'", column, d.Microseconds())
	}
	if column == "now()" {
		column = "(CAST(unixepoch('subsec') * 1000000 AS INTEGER))"
	}
	return fmt.Sprintf("(%s - %d)", column, d.Microseconds())
}

// Now is SQL for the current time in drv's dialect.
func Now(drv storage.Driver) string { return Earlier(drv, "now()", 0) }

// readers holds the read-only handle QueryInt opened on each SQLite file,
// closed by the cleanup of the test that opened it.
var readers sync.Map // path → *sql.DB

func sqliteReader(t testing.TB, d *sqlite.Driver) *sqlpkg.DB {
	if db, ok := readers.Load(d.Path()); ok {
		return db.(*sqlpkg.DB)
	}
	dsn := (&url.URL{Scheme: "file", Path: d.Path(), RawQuery: "_pragma=query_only(1)&_pragma=busy_timeout(10000)"}).String()
	db, err := sqlpkg.Open("sqlite", dsn)
	if err != nil {
		t.Fatalf("testdb: open a reader of %s: %v", d.Path(), err)
	}
	if prev, loaded := readers.LoadOrStore(d.Path(), db); loaded {
		_ = db.Close()
		return prev.(*sqlpkg.DB)
	}
	t.Cleanup(func() {
		readers.Delete(d.Path())
		_ = db.Close()
	})
	return db
}

// UUID is id as a statement's argument in drv's store: a uuid on
// PostgreSQL, its 16 bytes on SQLite.
func UUID(drv storage.Driver, id uuid.UUID) any {
	if Dialect(drv) == PostgreSQL {
		return id
	}
	return id[:]
}
