package sqlite

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/acidic-go/acidic/storage"
)

// The driver's migrations, NNNN_name.up.sql and NNNN_name.down.sql: SQL run
// as written (SQLite has no schemas to fill in).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationFiles returns the driver's migrations; see storage.Migrations.
func (d *Driver) MigrationFiles() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, a constant here.
		panic(err)
	}
	return sub
}

// MigrationLocked runs p.Func in a write transaction (BEGIN IMMEDIATE: the
// file's write lock is the migration lock, for every process on the file);
// see storage.Migrations. With p.Create it creates the table
// schema_migrations, the record of applied versions, when it does not
// exist. The transaction commits with synchronous=FULL.
func (d *Driver) MigrationLocked(ctx context.Context, p storage.MigrationLockedParams) error {
	s := &txState{d: d, solo: true}
	if err := s.begin(ctx); err != nil {
		return fmt.Errorf("migrations: take lock: %w", err)
	}
	defer s.end() // also when p.Func panics
	q := wq{s}
	var exists int
	if err := q.queryRow("MigrationFind").Scan(&exists); err != nil {
		return fmt.Errorf("migrations: find the version table: %w", wrapErr(err))
	}
	mtx := &migrationTx{q: q}
	switch {
	case exists == 0 && !p.Create:
		if err := p.Func(ctx, mtx, nil); err != nil {
			return err
		}
		return s.commit(ctx)
	case exists == 0:
		if _, err := q.exec("MigrationCreateTable"); err != nil {
			return fmt.Errorf("migrations: create version table: %w", err)
		}
	}
	applied, err := scanApplied(q.query("MigrationApplied"))
	if err != nil {
		return err
	}
	if err := p.Func(ctx, mtx, applied); err != nil {
		return err
	}
	return s.commit(ctx)
}

// scanApplied reads the record of applied versions.
func scanApplied(rows rowset, err error) ([]storage.AppliedMigration, error) {
	if err != nil {
		return nil, fmt.Errorf("migrations: read versions: %w", wrapErr(err))
	}
	defer rows.Close()
	var out []storage.AppliedMigration
	for rows.Next() {
		var a storage.AppliedMigration
		var at int64
		if err := rows.Scan(&a.Version, &a.Name, &at); err != nil {
			return nil, fmt.Errorf("migrations: read versions: %w", wrapErr(err))
		}
		a.AppliedAt = timeOf(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrations: read versions: %w", wrapErr(err))
	}
	return out, nil
}

// migrationTx runs migrations in MigrationLocked's transaction.
type migrationTx struct{ q wq }

// MigrationApply runs the up SQL and records the version.
func (m *migrationTx) MigrationApply(ctx context.Context, p storage.MigrationApplyParams) error {
	if err := m.script(ctx, p.SQL); err != nil {
		return err
	}
	if _, err := m.q.exec("MigrationRecord", p.Version, p.Name, m.q.now()); err != nil {
		return fmt.Errorf("record version %d: %w", p.Version, err)
	}
	return nil
}

// MigrationRevert runs the down SQL and removes the version from the record.
func (m *migrationTx) MigrationRevert(ctx context.Context, p storage.MigrationRevertParams) error {
	if err := m.script(ctx, p.SQL); err != nil {
		return err
	}
	if _, err := m.q.exec("MigrationUnrecord", p.Version); err != nil {
		return fmt.Errorf("unrecord version %d: %w", p.Version, err)
	}
	return nil
}

// script runs a migration file's statements.
func (m *migrationTx) script(ctx context.Context, text string) error {
	d := m.q.s.d
	if d.aborted.Load() {
		return fmt.Errorf("%w: SQLite rolled it back after an error", ErrTxDone)
	}
	// The prepared statements may name tables the script drops or
	// changes: prepare them afresh afterwards.
	for name, st := range d.wdirect {
		_ = st.Close()
		delete(d.wdirect, name)
	}
	_, err := d.wconn.ExecContext(context.WithoutCancel(ctx), text)
	return wrapErr(err)
}
