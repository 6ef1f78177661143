// Package migrations creates and upgrades the tables Acidic needs, on any
// storage driver.
//
// Each driver carries its migrations (storage.Migrations): versioned files
// NNNN_name.up.sql and the matching .down.sql, embedded in the driver's
// package (the PostgreSQL driver's are in storage/postgres/migrations). This
// package loads and checks them (versions from 1 without gaps, an up and a
// down file for each), orders them, and decides what to apply or revert; the
// driver runs them under its store's migration lock and records the versions
// applied (PostgreSQL: an advisory lock keyed by the schema and the schema's
// schema_migrations table). Two processes migrating at the same time are
// safe: the second waits for the first and then finds nothing left to do.
// Running Up twice is a no-op.
//
//	m := migrations.New(drv) // or drv.Migrator()
//	applied, err := m.Up(ctx)
//
// Up creates the store's record of versions only when it does not exist, so
// with nothing pending it only reads: a least-privilege application role may
// call it at start-up (docs/operations.md). A store that has versions
// applied that this build does not know, migrated by a newer version of
// Acidic, is refused by Up and Down with a *NewerStoreError, changing
// nothing.
package migrations
