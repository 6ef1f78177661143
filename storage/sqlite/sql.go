package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/acidic-go/acidic/storage"
)

// SQL returns the storage.SQL that runs your statements in this executor.
// Prefer storage.SQLOf(e), which works on every driver.
//
// In a transaction of this package (a step's, InTx's, Begin's) they run in
// it, on the writer connection; the first statement begins the transaction
// (BEGIN IMMEDIATE) if it has not begun. On the Driver, outside any
// transaction, Exec runs its statement in a write transaction of its own,
// committed with synchronous=FULL, and Query and QueryRow run on a
// read-only reader connection: a query that writes (INSERT … RETURNING)
// there fails with ErrReadOnlyQuery; run it in a transaction (InTx, Begin).
// Made with the context of one of the driver's own transactions, a write on
// the Driver fails with ErrNestedWrite instead of waiting for itself.
//
// A unique violation matches acidic.ErrConflict, the lock not had within
// Options.BusyTimeout ErrBusy, and no row for QueryRow storage.ErrNoRows.
func (e *executor) SQL() storage.SQL {
	if e.tx != nil {
		return txSQL{userTx{e.tx}}
	}
	return driverSQL{e.d}
}

// ErrReadOnlyQuery is the error of a Query or QueryRow made on the Driver,
// outside a transaction, whose statement writes: those run on read-only
// connections. Run the statement with Exec, or in a transaction.
var ErrReadOnlyQuery = errors.New("sqlite: a query on the driver outside a transaction only reads: write with Exec or in a transaction (InTx, Begin)")

// txSQL is storage.SQL in a transaction.
type txSQL struct{ u userTx }

func (s txSQL) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.u.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, userErr(err)
	}
	return res.RowsAffected()
}

func (s txSQL) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := s.u.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, userErr(err)
	}
	return sqlRows{rows}, nil
}

func (s txSQL) QueryRow(ctx context.Context, query string, args ...any) storage.Row {
	return sqlRow{s.u.QueryRowContext(ctx, query, args...)}
}

// driverSQL is storage.SQL on the driver, outside a transaction.
type driverSQL struct{ d *Driver }

func (s driverSQL) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	t := &txState{d: s.d}
	defer t.end()
	n, err := txSQL{userTx{t}}.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return n, t.commit(ctx)
}

func (s driverSQL) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	if s.d.closed.Load() {
		return nil, errClosed()
	}
	rows, err := s.d.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, readErr(err)
	}
	return sqlRows{rows}, nil
}

func (s driverSQL) QueryRow(ctx context.Context, query string, args ...any) storage.Row {
	if s.d.closed.Load() {
		return errRow{errClosed()}
	}
	return readRow{s.d.rdb.QueryRowContext(ctx, query, args...)}
}

type sqlRows struct{ rows *sql.Rows }

func (r sqlRows) Next() bool { return r.rows.Next() }

func (r sqlRows) Scan(dest ...any) error { return userErr(r.rows.Scan(dest...)) }

func (r sqlRows) Err() error { return userErr(r.rows.Err()) }

func (r sqlRows) Close() error { return r.rows.Close() }

type sqlRow struct{ row *Row }

func (r sqlRow) Scan(dest ...any) error { return userErr(r.row.Scan(dest...)) }

type readRow struct{ row *sql.Row }

func (r readRow) Scan(dest ...any) error { return readErr(r.row.Scan(dest...)) }

// userErr classifies an error of the caller's own SQL.
func userErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", storage.ErrNoRows, err)
	}
	return wrapErr(err)
}

// readErr is userErr for a statement on a reader connection.
func readErr(err error) error {
	if sqliteCode(err)&0xff == sqlite3.SQLITE_READONLY {
		return fmt.Errorf("%w: %w", ErrReadOnlyQuery, err)
	}
	return userErr(err)
}
