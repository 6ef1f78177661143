-- Acidic's tables in a SQLite file: the same tables as the PostgreSQL
-- driver's (its migrations 0001 to 0009), in SQLite's terms. Times are
-- INTEGER microseconds since the Unix epoch (UTC), run ids 16-byte BLOBs,
-- JSON is TEXT (storage.CheckJSON refuses what PostgreSQL's jsonb would, so
-- a store moves between the drivers unchanged). States are TEXT without
-- CHECK constraints: package storage refuses a state it does not know before
-- any write.

CREATE TABLE runs (
  id              BLOB PRIMARY KEY NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  workflow        TEXT NOT NULL,
  args            TEXT NOT NULL,
  state           TEXT NOT NULL DEFAULT 'pending',
  queue           TEXT NOT NULL,
  recovery_point  TEXT NOT NULL,
  definition_hash TEXT NOT NULL,
  attrs           TEXT NOT NULL DEFAULT 'null',
  cursor          INTEGER NOT NULL DEFAULT 0,
  -- The lease: its token, and the job attempt that holds it. Once that
  -- attempt is no longer running, the lease is free to take.
  locked_by       TEXT,
  locked_at       INTEGER,
  locked_job_id   INTEGER,
  locked_attempt  INTEGER,
  last_run_at     INTEGER,
  parent_run_id   BLOB REFERENCES runs (id) ON DELETE SET NULL,
  parent_step     TEXT,
  awaiting        INTEGER NOT NULL DEFAULT 0,
  error           TEXT,
  result          TEXT,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  finished_at     INTEGER,
  -- When a finished run's obligations were met (OnFinish staged, parent
  -- counted off): once per finish.
  settled_at      INTEGER,
  -- When a child run was counted off its awaiting parent: once in its life.
  counted_at      INTEGER
);
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at, id);
CREATE INDEX runs_parent ON runs (parent_run_id, created_at, id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE run_steps (
  run_id      BLOB NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  position    INTEGER NOT NULL,
  name        TEXT NOT NULL,
  state       TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  executions  INTEGER NOT NULL DEFAULT 1,
  result      TEXT,
  error       TEXT,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  PRIMARY KEY (run_id, position)
) WITHOUT ROWID;

-- AUTOINCREMENT: an id is never used twice, also after the job that had it
-- was pruned, so a worker holding an old attempt can never match a new job.
CREATE TABLE jobs (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  queue              TEXT NOT NULL,
  kind               TEXT NOT NULL,
  args               TEXT NOT NULL,
  run_id             BLOB REFERENCES runs (id) ON DELETE SET NULL,
  state              TEXT NOT NULL,
  priority           INTEGER NOT NULL DEFAULT 0,
  attempt            INTEGER NOT NULL DEFAULT 0,
  max_attempts       INTEGER NOT NULL,
  scheduled_at       INTEGER NOT NULL,
  attempted_at       INTEGER,
  attempted_by       TEXT,
  heartbeat_at       INTEGER,
  finalized_at       INTEGER,
  errors             TEXT NOT NULL DEFAULT '[]',
  meta               TEXT NOT NULL DEFAULT '{}',
  unique_key         BLOB,
  unique_states      INTEGER,
  created_at         INTEGER NOT NULL,
  -- The jobs this one waits for, as a JSON array, as inserted; job_deps
  -- holds the same edges, indexed both ways.
  depends_on         TEXT,
  dependency_failure TEXT NOT NULL DEFAULT 'cancel'
);
-- The fetch path: only jobs that can still run are indexed, so the index
-- stays small however many finished rows the table holds.
CREATE INDEX jobs_fetch ON jobs (queue, priority, scheduled_at, id)
  WHERE state IN ('available', 'scheduled', 'retryable');
CREATE INDEX jobs_running ON jobs (heartbeat_at) WHERE state = 'running';
CREATE INDEX jobs_finalized ON jobs (finalized_at) WHERE finalized_at IS NOT NULL;
CREATE INDEX jobs_run ON jobs (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX jobs_kind ON jobs (kind, id);
CREATE INDEX jobs_pending ON jobs (id) WHERE state = 'pending';
-- One job per unique key among the jobs in a state their mask covers. The
-- mask's bits: available 1, scheduled 2, running 4, retryable 8,
-- completed 16, cancelled 32, discarded 64, pending 128 (states.go).
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
  WHERE unique_key IS NOT NULL
    AND (unique_states & (CASE state WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'running' THEN 4 WHEN 'retryable' THEN 8 WHEN 'completed' THEN 16 WHEN 'cancelled' THEN 32 WHEN 'discarded' THEN 64 WHEN 'pending' THEN 128 ELSE 0 END)) <> 0;

-- Dependency graphs: job job_id waits for job dep_id.
CREATE TABLE job_deps (
  job_id INTEGER NOT NULL,
  dep_id INTEGER NOT NULL,
  PRIMARY KEY (job_id, dep_id)
) WITHOUT ROWID;
CREATE INDEX job_deps_dep ON job_deps (dep_id, job_id);
CREATE TRIGGER jobs_delete_deps AFTER DELETE ON jobs
BEGIN
  DELETE FROM job_deps WHERE job_id = old.id;
END;

-- The outbox: messages for systems outside this database, staged in a step's
-- transaction and delivered by a relay after commit, in order per key.
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  topic           TEXT NOT NULL,
  key             TEXT NOT NULL,
  payload         TEXT NOT NULL,
  run_id          BLOB,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  delivered_at    INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL
);
-- Undelivered messages by key and order: the head of each key is its
-- smallest undelivered id.
CREATE INDEX outbox_undelivered ON outbox (key, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
