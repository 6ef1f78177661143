-- What the PostgreSQL driver's migration 0017 adds: the log records and
-- failed attempts kept with each step, and tags on jobs and runs (a JSON
-- array of text, NULL when none).

-- The log records of a step (seq 1, 2, ...; seq 0 is the drop marker).
CREATE TABLE run_step_logs (
  run_id   BLOB NOT NULL,
  position INTEGER NOT NULL,
  seq      INTEGER NOT NULL,
  attempt  INTEGER NOT NULL,
  at       INTEGER NOT NULL,
  level    TEXT NOT NULL,
  message  TEXT NOT NULL,
  attrs    TEXT,
  bytes    INTEGER NOT NULL,
  dropped  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, position, seq)
) WITHOUT ROWID;

-- The failed attempts of a step: the latest storage.MaxStepFailures kept.
CREATE TABLE run_step_failures (
  run_id     BLOB NOT NULL,
  position   INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  error      TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  failed_at  INTEGER NOT NULL,
  PRIMARY KEY (run_id, position, seq)
) WITHOUT ROWID;

CREATE TRIGGER runs_delete_step_details AFTER DELETE ON runs
BEGIN
  DELETE FROM run_step_logs WHERE run_id = old.id;
  DELETE FROM run_step_failures WHERE run_id = old.id;
END;

ALTER TABLE jobs ADD COLUMN tags TEXT;
ALTER TABLE runs ADD COLUMN tags TEXT;
