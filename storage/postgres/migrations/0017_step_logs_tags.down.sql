DROP INDEX IF EXISTS {schema}.runs_tags;
DROP INDEX IF EXISTS {schema}.jobs_tags;
ALTER TABLE {schema}.runs DROP COLUMN IF EXISTS tags;
ALTER TABLE {schema}.jobs DROP COLUMN IF EXISTS tags;
DROP TRIGGER IF EXISTS runs_delete_step_details ON {schema}.runs;
DROP FUNCTION IF EXISTS {schema}.delete_run_step_details();
DROP TABLE IF EXISTS {schema}.run_step_failures;
DROP TABLE IF EXISTS {schema}.run_step_logs;
