DROP TRIGGER IF EXISTS runs_delete_awaited_jobs ON {schema}.runs;
DROP FUNCTION IF EXISTS {schema}.delete_awaited_jobs();
DROP TABLE IF EXISTS {schema}.awaited_jobs;
