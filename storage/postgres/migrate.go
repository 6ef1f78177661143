package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/acidic-go/acidic/storage"
)

// The driver's migrations, NNNN_name.up.sql and NNNN_name.down.sql. Their
// SQL writes the schema as {schema}, replaced by the quoted schema name
// when they run.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationFiles returns the driver's migrations; see storage.Migrations.
// It needs no pool: postgres.New(nil, postgres.Options{}).MigrationFiles()
// lists them without a database.
func (d *Driver) MigrationFiles() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, a constant here.
		panic(err)
	}
	return sub
}

// MigrationLocked runs p.Func under the schema's migration lock, a
// transaction-scoped advisory lock keyed by the schema's name; see
// storage.Migrations. With p.Create it creates the schema and its
// schema_migrations table when the catalogs say they do not exist, so an
// owner may migrate a schema an administrator created for it, and with
// nothing to do it needs only USAGE on the schema and SELECT on
// schema_migrations (docs/operations.md). A schema name CheckSchema refuses
// is returned as that error without touching the database.
func (d *Driver) MigrationLocked(ctx context.Context, p storage.MigrationLockedParams) error {
	if d.refused != nil {
		return d.refused
	}
	return pgx.BeginFunc(ctx, d.all, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, d.q.Get("MigrationLock"), d.opts.Schema); err != nil {
			return fmt.Errorf("migrations: take lock: %w", err)
		}
		var schemaExists, tableExists bool
		if err := tx.QueryRow(ctx, d.q.Get("MigrationFind"), d.opts.Schema).Scan(&schemaExists, &tableExists); err != nil {
			return fmt.Errorf("migrations: find schema: %w", err)
		}
		mtx := &migrationTx{tx: tx, q: d.q, quoted: pgx.Identifier{d.opts.Schema}.Sanitize()}
		switch {
		case !tableExists && !p.Create:
			return p.Func(ctx, mtx, nil)
		case !tableExists:
			if !schemaExists {
				if _, err := tx.Exec(ctx, d.q.Get("MigrationCreateSchema")); err != nil {
					return fmt.Errorf("migrations: create schema: %w", err)
				}
			}
			if _, err := tx.Exec(ctx, d.q.Get("MigrationCreateTable")); err != nil {
				return fmt.Errorf("migrations: create version table: %w", err)
			}
		}
		rows, err := tx.Query(ctx, d.q.Get("MigrationApplied"))
		if err != nil {
			return fmt.Errorf("migrations: read versions: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storage.AppliedMigration])
		if err != nil {
			return fmt.Errorf("migrations: read versions: %w", err)
		}
		return p.Func(ctx, mtx, applied)
	})
}

// migrationTx runs migrations in MigrationLocked's transaction.
type migrationTx struct {
	tx     pgx.Tx
	q      queries
	quoted string // the schema, quoted
}

// MigrationApply runs the up SQL with {schema} filled in and records the
// version in schema_migrations.
func (m *migrationTx) MigrationApply(ctx context.Context, p storage.MigrationApplyParams) error {
	if _, err := m.tx.Exec(ctx, m.render(p.SQL)); err != nil {
		return err
	}
	if _, err := m.tx.Exec(ctx, m.q.Get("MigrationRecord"), p.Version, p.Name); err != nil {
		return fmt.Errorf("record version %d: %w", p.Version, err)
	}
	return nil
}

// MigrationRevert runs the down SQL with {schema} filled in and removes the
// version from schema_migrations.
func (m *migrationTx) MigrationRevert(ctx context.Context, p storage.MigrationRevertParams) error {
	if _, err := m.tx.Exec(ctx, m.render(p.SQL)); err != nil {
		return err
	}
	if _, err := m.tx.Exec(ctx, m.q.Get("MigrationUnrecord"), p.Version); err != nil {
		return fmt.Errorf("unrecord version %d: %w", p.Version, err)
	}
	return nil
}

func (m *migrationTx) render(sql string) string {
	return strings.ReplaceAll(sql, "{schema}", m.quoted)
}
