// Package migrations creates and upgrades the tables Acidic needs.
//
// The SQL lives in versioned files embedded in the binary (postgres/NNNN_name.up.sql
// and the matching .down.sql). Every table is created in a schema of the caller's
// choosing (default "acidic"), so several isolated instances can share one
// database: tests use one schema each.
//
// A Migrator applies migrations under a PostgreSQL advisory lock keyed by the
// schema name, so two processes migrating at the same time are safe: the second
// waits for the first and then finds nothing left to do. Applied versions are
// recorded in the schema's schema_migrations table; running Up twice is a no-op.
//
// Up creates the schema and schema_migrations only when they do not exist, so
// with nothing pending it only reads: a least-privilege application role may
// call it at start-up, and an owner may migrate a schema an administrator
// created for it (docs/operations.md). Schema names PostgreSQL would not keep
// as given (over 63 bytes, say) are refused (CheckSchema).
package migrations
