-- Leave room in each page, and keep run state out of every index, so all the
-- updates a step makes to its run (recovery point, state, cursor, lease) are
-- HOT updates that touch no index: cheaper, and fewer SERIALIZABLE conflicts
-- between unrelated runs on shared index pages.
ALTER TABLE {schema}.runs SET (fillfactor = 80);
ALTER TABLE {schema}.run_steps SET (fillfactor = 80);
DROP INDEX {schema}.runs_state_workflow;
CREATE INDEX runs_workflow_created ON {schema}.runs (workflow, created_at);
-- Ending, rescuing or cancelling a job attempt frees the run lease it held
-- by job id. Step updates keep the lease columns, so they stay HOT; only
-- taking and giving up the lease touch this index.
CREATE INDEX runs_locked_job ON {schema}.runs (locked_job_id) WHERE locked_job_id IS NOT NULL;

-- Jobs are updated at every claim and completion: vacuum them early, so the
-- dead entries claimed jobs leave at the head of the fetch index are cleaned
-- within seconds wherever autovacuum runs.
ALTER TABLE {schema}.jobs SET (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_cost_delay = 0
);
