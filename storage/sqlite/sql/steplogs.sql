-- What is kept with each step of a run (migration 0003): its log records
-- and its failed attempts. See storage.StepLogs; steplogs.go applies the
-- caps.

-- name: StepLogState
-- The highest seq, the bytes kept and whether a drop marker exists for step
-- ?2 of run ?1.
SELECT coalesce(max(seq), 0), coalesce(sum(bytes), 0), coalesce(max(seq = 0), 0)
FROM run_step_logs
WHERE run_id = ?1 AND position = ?2;

-- name: StepLogInsert
INSERT INTO run_step_logs (run_id, position, seq, attempt, at, level, message, attrs, bytes)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9);

-- name: StepLogDropped
-- Counts ?3 more dropped records in the drop marker (seq 0), written at ?4.
INSERT INTO run_step_logs AS l (run_id, position, seq, attempt, at, level, message, attrs, bytes, dropped)
VALUES (?1, ?2, 0, 0, ?4, 'WARN', '', NULL, 0, ?3)
ON CONFLICT (run_id, position, seq) DO UPDATE
SET dropped = l.dropped + excluded.dropped, at = excluded.at;

-- name: StepFailureInsert
-- Adds a failed attempt (?3 attempt, ?4 error, ?5 started, ?6 failed at) to
-- the history of step ?2 of run ?1 as the next seq.
INSERT INTO run_step_failures (run_id, position, seq, attempt, error, started_at, failed_at)
SELECT ?1, ?2, coalesce(max(seq), 0) + 1, ?3, ?4, ?5, ?6
FROM run_step_failures
WHERE run_id = ?1 AND position = ?2
RETURNING seq;

-- name: StepFailureForget
-- Deletes the failures of step ?2 of run ?1 numbered ?3 or lower.
DELETE FROM run_step_failures WHERE run_id = ?1 AND position = ?2 AND seq <= ?3;

-- name: StepLogs
SELECT position, seq, attempt, at, level, message, attrs, dropped
FROM run_step_logs
WHERE run_id = ?1
ORDER BY position, seq;

-- name: StepFailures
SELECT position, seq, attempt, error, started_at, failed_at
FROM run_step_failures
WHERE run_id = ?1
ORDER BY position, seq;
