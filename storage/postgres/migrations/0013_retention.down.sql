CREATE INDEX IF NOT EXISTS jobs_finalized ON {schema}.jobs (finalized_at) WHERE finalized_at IS NOT NULL;
DROP INDEX IF EXISTS {schema}.jobs_final;
