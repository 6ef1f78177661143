-- What is kept with each step of a run beside its step log row (run_steps):
-- the records the step wrote through its logger, and each failed attempt.
-- Like run_steps (migration 0005), these tables have no foreign key to runs,
-- which would cost a query per inserted row; deleting runs deletes them
-- once per statement, through the trigger below.

-- The log records of a step, in the order written: seq 1, 2, ... up to the
-- cap per step (storage.MaxStepLogRecords and MaxStepLogBytes). The row with
-- seq 0 is the drop marker: dropped counts the records not kept, at the last
-- time one was dropped. Written in the step's own transaction only.
CREATE TABLE {schema}.run_step_logs (
  run_id   uuid NOT NULL,
  position integer NOT NULL,
  seq      integer NOT NULL,
  attempt  integer NOT NULL,
  at       timestamptz NOT NULL,
  level    text NOT NULL,
  message  text NOT NULL,
  -- json, not jsonb: the attributes keep their order and spelling.
  attrs    json,
  -- Bytes of message and attrs, counted against the cap.
  bytes    integer NOT NULL,
  dropped  integer NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, position, seq)
);

-- The failed attempts of a step: seq counts every failure of the step, and
-- only the latest storage.MaxStepFailures rows are kept (so the highest seq
-- less the rows kept is how many were forgotten).
CREATE TABLE {schema}.run_step_failures (
  run_id     uuid NOT NULL,
  position   integer NOT NULL,
  seq        integer NOT NULL,
  attempt    integer NOT NULL,
  error      text NOT NULL,
  started_at timestamptz NOT NULL,
  failed_at  timestamptz NOT NULL,
  PRIMARY KEY (run_id, position, seq)
);

CREATE FUNCTION {schema}.delete_run_step_details() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DELETE FROM %I.run_step_logs WHERE run_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
  EXECUTE format('DELETE FROM %I.run_step_failures WHERE run_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$$;
CREATE TRIGGER runs_delete_step_details AFTER DELETE ON {schema}.runs
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.delete_run_step_details();

-- Tags set at enqueue. NULL when none, so the partial GIN indexes hold only
-- tagged rows and an untagged job or run costs them nothing. A filter
-- "tags @> $n" implies "tags IS NOT NULL" (@> is strict), so the planner may
-- use them.
ALTER TABLE {schema}.jobs ADD COLUMN tags text[];
ALTER TABLE {schema}.runs ADD COLUMN tags text[];
CREATE INDEX jobs_tags ON {schema}.jobs USING gin (tags) WHERE tags IS NOT NULL;
CREATE INDEX runs_tags ON {schema}.runs USING gin (tags) WHERE tags IS NOT NULL;
