-- The queue jobs a run's await step awaits (steps.AwaitJobs), one row per
-- job, written in the step's transaction. The run waits through a job of
-- its own that depends on them (jobs.depends_on, dependency_failure
-- 'ignore'); when that job resumes the run, the same statement records each
-- awaited job's state, errors and end here, so the run reads what its jobs
-- did even after the queue has pruned them.
CREATE TABLE {schema}.awaited_jobs (
  run_id       uuid NOT NULL,
  step         text NOT NULL,
  job_id       bigint NOT NULL,
  kind         text NOT NULL,
  queue        text NOT NULL,
  -- Recorded when the run resumed; NULL before.
  state        text,
  errors       jsonb,
  finalized_at timestamptz,
  PRIMARY KEY (run_id, step, job_id)
);

-- Deleting runs deletes the jobs they awaited, as for their step logs.
CREATE FUNCTION {schema}.delete_awaited_jobs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DELETE FROM %I.awaited_jobs WHERE run_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$$;
CREATE TRIGGER runs_delete_awaited_jobs AFTER DELETE ON {schema}.runs
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.delete_awaited_jobs();
