-- Queries of the migration primitives (migrate.go), all run in the write
-- transaction MigrationLocked holds (BEGIN IMMEDIATE: the store's migration
-- lock).

-- name: MigrationFind
-- Whether the record of applied versions exists.
SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations';

-- name: MigrationCreateTable
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at INTEGER NOT NULL
);

-- name: MigrationApplied
SELECT version, name, applied_at FROM schema_migrations ORDER BY version;

-- name: MigrationRecord
INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3);

-- name: MigrationUnrecord
DELETE FROM schema_migrations WHERE version = $1;
