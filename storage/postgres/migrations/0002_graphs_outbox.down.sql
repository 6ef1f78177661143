DROP TABLE IF EXISTS {schema}.outbox;
DROP INDEX IF EXISTS {schema}.jobs_pending;
DROP INDEX IF EXISTS {schema}.jobs_pending_deps;
ALTER TABLE {schema}.jobs DROP COLUMN IF EXISTS dependency_failure, DROP COLUMN IF EXISTS depends_on;
