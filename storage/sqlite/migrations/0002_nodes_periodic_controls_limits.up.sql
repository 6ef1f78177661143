-- What the PostgreSQL driver's migrations 0010 to 0016 add, in SQLite's
-- terms: the leader and the nodes, periodic schedules, queue controls, the
-- index retention prunes through, the slots of limited fetches, unique job
-- graphs and the jobs runs await. Times are INTEGER microseconds, arrays
-- JSON text.

-- At most one row: the node that leads until expires_at.
CREATE TABLE leader (
  one        INTEGER PRIMARY KEY CHECK (one = 1),
  node_id    TEXT NOT NULL,
  elected_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);

-- One row per running node; queues is a JSON array of
-- {"queue", "max_workers", "busy"}.
CREATE TABLE nodes (
  id           TEXT PRIMARY KEY NOT NULL,
  hostname     TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  version      TEXT NOT NULL,
  queues       TEXT NOT NULL DEFAULT '[]',
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
);

-- Periodic schedules registered in code.
CREATE TABLE periodic_schedules (
  name        TEXT PRIMARY KEY NOT NULL,
  kind        TEXT NOT NULL,
  spec        TEXT NOT NULL,
  tz          TEXT NOT NULL,
  policy      TEXT NOT NULL,
  last_run_at INTEGER,
  next_run_at INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

-- Queue controls; a row also makes a queue known.
CREATE TABLE queue_controls (
  queue       TEXT PRIMARY KEY NOT NULL,
  paused      INTEGER NOT NULL DEFAULT 0,
  paused_at   INTEGER,
  max_workers INTEGER CHECK (max_workers >= 1),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

-- Retention by final state and queue.
CREATE INDEX jobs_final ON jobs (state, queue, finalized_at) WHERE finalized_at IS NOT NULL;
DROP INDEX jobs_finalized;

-- Limited fetches: concurrency ('c') and rate ('r') slots of a queue
-- without partitions.
CREATE TABLE queue_slots (
  queue   TEXT NOT NULL,
  kind    TEXT NOT NULL,
  slot    INTEGER NOT NULL,
  job_id  INTEGER,
  attempt INTEGER,
  used_at INTEGER,
  PRIMARY KEY (queue, kind, slot)
) WITHOUT ROWID;

-- Limited fetches of partitioned queues: one row per partition
-- (partition_key: the JSON array of the partition fields' values), starts a
-- JSON array of start stamps, oldest first; the queue's row has key ''.
CREATE TABLE queue_limits (
  queue         TEXT NOT NULL,
  partition_key TEXT NOT NULL,
  starts        TEXT NOT NULL DEFAULT '[]',
  stamped_at    INTEGER,
  PRIMARY KEY (queue, partition_key)
) WITHOUT ROWID;
CREATE INDEX queue_limits_stamped ON queue_limits (queue, stamped_at);

-- Unique job graphs: names and job_ids are JSON arrays.
CREATE TABLE job_graphs (
  key        TEXT PRIMARY KEY NOT NULL,
  names      TEXT NOT NULL DEFAULT '[]',
  job_ids    TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL
);
CREATE INDEX job_graphs_created_at ON job_graphs (created_at);

-- The queue jobs a run's await step awaits.
CREATE TABLE awaited_jobs (
  run_id       BLOB NOT NULL,
  step         TEXT NOT NULL,
  job_id       INTEGER NOT NULL,
  kind         TEXT NOT NULL,
  queue        TEXT NOT NULL,
  state        TEXT,
  errors       TEXT,
  finalized_at INTEGER,
  PRIMARY KEY (run_id, step, job_id)
) WITHOUT ROWID;
CREATE TRIGGER runs_delete_awaited_jobs AFTER DELETE ON runs
BEGIN
  DELETE FROM awaited_jobs WHERE run_id = old.id;
END;
