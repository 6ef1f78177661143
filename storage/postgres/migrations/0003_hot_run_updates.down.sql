ALTER TABLE {schema}.jobs RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_delay);
DROP INDEX IF EXISTS {schema}.runs_locked_job;
DROP INDEX IF EXISTS {schema}.runs_workflow_created;
CREATE INDEX IF NOT EXISTS runs_state_workflow ON {schema}.runs (state, workflow, created_at);
ALTER TABLE {schema}.run_steps RESET (fillfactor);
ALTER TABLE {schema}.runs RESET (fillfactor);
