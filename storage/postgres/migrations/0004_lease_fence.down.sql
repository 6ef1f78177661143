CREATE INDEX IF NOT EXISTS runs_locked_job ON {schema}.runs (locked_job_id) WHERE locked_job_id IS NOT NULL;
DROP FUNCTION IF EXISTS {schema}.lease_lost(uuid);
