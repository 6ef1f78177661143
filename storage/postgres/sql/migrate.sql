-- Queries of the migration primitives (migrate.go), all run in the one
-- transaction MigrationLocked holds. $1 is the schema's name as given
-- where a query takes it; {schema} is the quoted name.

-- name: MigrationLock
-- The schema's migration lock, held until the transaction ends. Advisory
-- locks need no privilege, and the key is the schema's name, so the lock is
-- taken before anything in the schema is looked at.
SELECT pg_advisory_xact_lock(hashtextextended('acidic.migrations:' || $1, 0));

-- name: MigrationFind
-- Whether the schema and its version table exist. The catalogs say so
-- without any privilege on the schema; CREATE ... IF NOT EXISTS would not
-- do: PostgreSQL checks the privilege to create before it looks whether the
-- object exists.
SELECT
  EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
  EXISTS (SELECT 1 FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = 'schema_migrations');

-- name: MigrationCreateSchema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: MigrationCreateTable
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: MigrationApplied
SELECT version, name, applied_at FROM {schema}.schema_migrations ORDER BY version;

-- name: MigrationRecord
INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2);

-- name: MigrationUnrecord
DELETE FROM {schema}.schema_migrations WHERE version = $1;
