-- Acidic's tables. Every name is qualified with {schema}, which the migrator
-- replaces with the quoted schema name, so several instances share a database.

-- job_state_bit maps a job state to one bit, so a unique job can say which
-- states count as duplicates with a bitmask (see jobs_unique_key).
CREATE FUNCTION {schema}.job_state_bit(state text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE state
    WHEN 'available' THEN 1
    WHEN 'scheduled' THEN 2
    WHEN 'running'   THEN 4
    WHEN 'retryable' THEN 8
    WHEN 'completed' THEN 16
    WHEN 'cancelled' THEN 32
    WHEN 'discarded' THEN 64
    WHEN 'pending'   THEN 128
    ELSE 0 END::smallint
$$;

CREATE TABLE {schema}.runs (
  id              uuid PRIMARY KEY,
  idempotency_key text NOT NULL,
  workflow        text NOT NULL,
  args            jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'awaiting', 'succeeded', 'failed', 'cancelled')),
  queue           text NOT NULL,
  recovery_point  text NOT NULL,
  definition_hash text NOT NULL,
  attrs           jsonb NOT NULL DEFAULT 'null',
  cursor          bigint NOT NULL DEFAULT 0,
  locked_by       text,
  locked_at       timestamptz,
  -- The job attempt that holds the lease: once that attempt is no longer
  -- running (its worker died and it was rescued), the lease is defunct.
  locked_job_id   bigint,
  locked_attempt  integer,
  last_run_at     timestamptz,
  parent_run_id   uuid REFERENCES {schema}.runs (id) ON DELETE SET NULL,
  parent_step     text,
  awaiting        integer NOT NULL DEFAULT 0 CHECK (awaiting >= 0),
  error           text,
  result          jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz,
  CONSTRAINT runs_idempotency_key UNIQUE (idempotency_key)
);
CREATE INDEX runs_state_workflow ON {schema}.runs (state, workflow, created_at);
CREATE INDEX runs_parent ON {schema}.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE {schema}.run_steps (
  run_id      uuid NOT NULL REFERENCES {schema}.runs (id) ON DELETE CASCADE,
  position    integer NOT NULL,
  name        text NOT NULL,
  state       text NOT NULL CHECK (state IN ('succeeded', 'failed', 'awaiting', 'halted', 'repeating')),
  attempt     integer NOT NULL,
  executions  integer NOT NULL DEFAULT 1,
  result      jsonb,
  error       text,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  PRIMARY KEY (run_id, position)
);

CREATE TABLE {schema}.jobs (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue         text NOT NULL,
  kind          text NOT NULL,
  args          jsonb NOT NULL,
  run_id        uuid REFERENCES {schema}.runs (id) ON DELETE SET NULL,
  state         text NOT NULL
                CHECK (state IN ('pending', 'available', 'scheduled', 'running', 'retryable', 'completed', 'cancelled', 'discarded')),
  priority      smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 3),
  attempt       integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL CHECK (max_attempts >= 1),
  scheduled_at  timestamptz NOT NULL DEFAULT now(),
  attempted_at  timestamptz,
  attempted_by  text,
  heartbeat_at  timestamptz,
  finalized_at  timestamptz,
  errors        jsonb NOT NULL DEFAULT '[]',
  meta          jsonb NOT NULL DEFAULT '{}',
  unique_key    bytea,
  unique_states smallint,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- The fetch path: only jobs that can still run are indexed, so the index stays
-- small however many finished rows the table holds.
CREATE INDEX jobs_fetch ON {schema}.jobs (queue, priority, scheduled_at, id)
  WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX jobs_running ON {schema}.jobs (heartbeat_at) WHERE state = 'running';
CREATE INDEX jobs_finalized ON {schema}.jobs (finalized_at) WHERE finalized_at IS NOT NULL;
CREATE INDEX jobs_run ON {schema}.jobs (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX jobs_kind ON {schema}.jobs (kind, id);
CREATE UNIQUE INDEX jobs_unique_key ON {schema}.jobs (unique_key)
  WHERE unique_key IS NOT NULL AND (unique_states & {schema}.job_state_bit(state)) <> 0;
