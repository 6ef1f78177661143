-- What is kept with each step of a run (migration 0015): its log records
-- and its failed attempts. See storage.StepLogs.

-- name: StepLogInsert
-- Appends records to the logs of step $2 of run $1: column arrays $3
-- attempts, $4 times, $5 levels, $6 messages, $7 attrs (JSON text or NULL),
-- $8 bytes. Records are kept in order while the step's count stays within
-- $10 and its bytes within $11, and only while nothing was dropped before
-- (so what is kept is the first records the step wrote); the rest, with $9
-- records the caller dropped, are counted in the drop marker (seq 0).
WITH cur AS (
  SELECT coalesce(max(seq), 0) AS n,
         coalesce(sum(bytes), 0) AS b,
         bool_or(seq = 0) AS capped
  FROM {schema}.run_step_logs
  WHERE run_id = $1 AND position = $2
),
new AS (
  SELECT r.attempt, r.at, r.level, r.message, r.attrs, r.bytes,
         cur.n + r.ord AS seq,
         cur.b + sum(r.bytes) OVER (ORDER BY r.ord) AS total,
         coalesce(cur.capped, false) AS capped
  FROM unnest($3::integer[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::integer[])
       WITH ORDINALITY AS r(attempt, at, level, message, attrs, bytes, ord),
       cur
),
kept AS (
  INSERT INTO {schema}.run_step_logs (run_id, position, seq, attempt, at, level, message, attrs, bytes)
  SELECT $1, $2, seq, attempt, at, level, message, attrs::json, bytes
  FROM new
  WHERE NOT capped AND seq <= $10 AND total <= $11
  RETURNING 1
),
counted AS (
  SELECT (SELECT count(*) FROM new) - (SELECT count(*) FROM kept) + $9::integer AS dropped
)
INSERT INTO {schema}.run_step_logs AS l (run_id, position, seq, attempt, at, level, message, attrs, bytes, dropped)
SELECT $1, $2, 0, 0, now(), 'WARN', '', NULL, 0, dropped
FROM counted
WHERE dropped > 0
ON CONFLICT (run_id, position, seq) DO UPDATE
SET dropped = l.dropped + excluded.dropped, at = excluded.at;

-- name: StepFailureInsert
-- Adds a failed attempt ($3 attempt, $4 error, $5 started, $6 failed at;
-- NULL: now) to the history of step $2 of run $1, and deletes the step's
-- failures older than the latest $7. The caller holds the run's lease (its
-- row lock), so no other failure of the step is numbered at once.
WITH next AS (
  SELECT coalesce(max(seq), 0) + 1 AS seq
  FROM {schema}.run_step_failures
  WHERE run_id = $1 AND position = $2
),
added AS (
  INSERT INTO {schema}.run_step_failures (run_id, position, seq, attempt, error, started_at, failed_at)
  SELECT $1, $2, next.seq, $3, $4, coalesce($5, now()), coalesce($6, now())
  FROM next
  RETURNING seq
)
DELETE FROM {schema}.run_step_failures f
USING added
WHERE f.run_id = $1 AND f.position = $2 AND f.seq <= added.seq - $7::integer;

-- name: StepLogs
-- The kept log records of run $1's steps (the drop marker first, seq 0).
SELECT position, seq, attempt, at, level, message, attrs, dropped
FROM {schema}.run_step_logs
WHERE run_id = $1
ORDER BY position, seq;

-- name: StepFailures
-- The kept failures of run $1's steps, oldest first.
SELECT position, seq, attempt, error, started_at, failed_at
FROM {schema}.run_step_failures
WHERE run_id = $1
ORDER BY position, seq;
