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
package migrations
