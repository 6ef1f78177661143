-- Queue controls (migration 0002). Each query returns the columns
-- readControls reads: queue, paused, paused_at, coalesce(max_workers, 0),
-- created_at, updated_at.

-- name: QueueKnown
-- Whether queue ?1 is known: it has controls, or jobs that have not
-- finished.
SELECT EXISTS (SELECT 1 FROM queue_controls WHERE queue = ?1)
    OR EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND state IN ('available', 'scheduled', 'retryable'))
    OR EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 'running')
    OR EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 'pending');

-- name: QueuePause
-- Pauses (?2 true) or resumes queue ?1 at ?3; a queue paused again keeps its
-- paused_at.
INSERT INTO queue_controls AS c (queue, paused, paused_at, created_at, updated_at)
VALUES (?1, ?2, CASE WHEN ?2 THEN ?3 END, ?3, ?3)
ON CONFLICT (queue) DO UPDATE
SET paused = excluded.paused,
    paused_at = CASE WHEN excluded.paused THEN coalesce(c.paused_at, ?3) END,
    updated_at = ?3
RETURNING queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at;

-- name: QueueScale
-- Sets the workers per node of queue ?1 to ?2 (NULL: each node's own).
INSERT INTO queue_controls AS c (queue, max_workers, created_at, updated_at)
VALUES (?1, ?2, ?3, ?3)
ON CONFLICT (queue) DO UPDATE
SET max_workers = excluded.max_workers,
    updated_at = ?3
RETURNING queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at;

-- name: QueueControls
-- The controls of the queues in ?1 (a JSON array; every queue when NULL).
SELECT queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at
FROM queue_controls
WHERE ?1 IS NULL OR queue IN (SELECT value FROM json_each(?1))
ORDER BY queue;

-- name: QueueRegister
INSERT INTO queue_controls (queue, created_at, updated_at)
SELECT DISTINCT value, ?2, ?2 FROM json_each(?1) WHERE true
ON CONFLICT (queue) DO NOTHING;
