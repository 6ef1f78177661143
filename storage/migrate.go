package storage

import (
	"context"
	"io/fs"
	"time"
)

// Migrations is the part of a Driver that package migrations creates and
// upgrades the driver's store with: the driver's migration files, and the
// few steps of running them that depend on the database (its lock, its
// record of applied versions, its dialect). Which migrations to run, in
// which order, and the checks of the files and of the store's versions are
// package migrations', the same for every driver.
//
// A store is what one driver instance works in: a schema of a PostgreSQL
// database, a SQLite file.
type Migrations interface {
	// MigrationFiles returns the driver's migrations: for each version N,
	// from 1 without gaps, a file NNNN_name.up.sql that applies it and
	// NNNN_name.down.sql that reverts it, at the root of the file system
	// (NNNN is N in decimal, usually zero-padded to four digits; name says
	// what the migration does). Other files are ignored. The SQL is the
	// driver's own: MigrationTx runs it.
	MigrationFiles() fs.FS
	// MigrationLocked runs p.Func in one transaction that holds the store's
	// migration lock, and commits it when p.Func returns nil (it rolls back
	// on an error or a panic). Two MigrationLocked calls on one store, from
	// any processes, never overlap: the second waits until the first has
	// ended (PostgreSQL takes an advisory lock keyed by the schema, SQLite
	// begins with BEGIN IMMEDIATE). p.Func is given the versions applied
	// when the lock was taken.
	//
	// With p.Create, the store and its record of applied versions are
	// created first when they do not exist. Without it, nothing is created:
	// a store that has no record counts as having nothing applied (p.Func
	// then must not apply or revert anything). Neither creates what exists
	// already, so with nothing to do MigrationLocked only reads: a role that
	// may only read the record can call it.
	MigrationLocked(ctx context.Context, p MigrationLockedParams) error
}

// MigrationLockedParams say what MigrationLocked runs under the store's
// migration lock.
type MigrationLockedParams struct {
	// Create makes sure the store and its record of applied versions exist
	// before Func runs.
	Create bool
	// Func is run in the transaction.
	Func MigrationFunc
}

// MigrationFunc is the body of MigrationLocked: it applies or reverts
// migrations through tx. applied is the store's record, by ascending
// version; it may hold versions the caller does not know (a newer build
// migrated the store).
type MigrationFunc func(ctx context.Context, tx MigrationTx, applied []AppliedMigration) error

// AppliedMigration is one version in a store's record of applied
// migrations.
type AppliedMigration struct {
	// Version is the migration's version.
	Version int
	// Name is the migration's name as recorded when it was applied.
	Name string
	// AppliedAt is when it was applied.
	AppliedAt time.Time
}

// MigrationTx applies and reverts migrations inside MigrationLocked's
// transaction. It is only valid until its MigrationFunc returns.
type MigrationTx interface {
	// MigrationApply runs one migration's up SQL and records its version as
	// applied (now), in the transaction. The caller applies only versions
	// that are not recorded.
	MigrationApply(ctx context.Context, p MigrationApplyParams) error
	// MigrationRevert runs one migration's down SQL and removes its version
	// from the record, in the transaction. The caller reverts only versions
	// that are recorded.
	MigrationRevert(ctx context.Context, p MigrationRevertParams) error
}

// MigrationApplyParams are the migration MigrationApply applies.
type MigrationApplyParams struct {
	// Version and Name are recorded.
	Version int
	Name    string
	// SQL is the up file's text, as MigrationFiles holds it.
	SQL string
}

// MigrationRevertParams are the migration MigrationRevert reverts.
type MigrationRevertParams struct {
	// Version is removed from the record.
	Version int
	// SQL is the down file's text, as MigrationFiles holds it.
	SQL string
}
