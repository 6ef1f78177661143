package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/storage"
)

// SQL returns the storage.SQL that runs your statements in this executor:
// in the transaction for a storage.Tx of this package (a step's, InTx's,
// WrapTx's), on the pool for the Driver. Prefer storage.SQLOf(e), which
// works on every driver.
//
// Errors keep pgx's (a *pgconn.PgError with its SQLSTATE); a serialization
// failure also matches acidic.ErrSerialization (a step then runs again), a
// unique violation acidic.ErrConflict, and no row for QueryRow
// storage.ErrNoRows.
func (e *executor) SQL() storage.SQL { return pgSQL{e.db} }

// pgSQL is storage.SQL on a pool or a transaction.
type pgSQL struct{ db dbtx }

func (s pgSQL) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := s.db.Exec(ctx, query, args...)
	if err != nil {
		return 0, userErr(err)
	}
	return tag.RowsAffected(), nil
}

func (s pgSQL) Query(ctx context.Context, query string, args ...any) (storage.Rows, error) {
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, userErr(err)
	}
	return pgRows{rows}, nil
}

func (s pgSQL) QueryRow(ctx context.Context, query string, args ...any) storage.Row {
	return pgRow{s.db.QueryRow(ctx, query, args...)}
}

type pgRows struct{ rows pgx.Rows }

func (r pgRows) Next() bool { return r.rows.Next() }

func (r pgRows) Scan(dest ...any) error { return userErr(r.rows.Scan(dest...)) }

func (r pgRows) Err() error { return userErr(r.rows.Err()) }

func (r pgRows) Close() error {
	r.rows.Close()
	return nil
}

type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error { return userErr(r.row.Scan(dest...)) }

// userErr classifies an error of the caller's own SQL.
func userErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", storage.ErrNoRows, err)
	}
	return wrapErr(err)
}
