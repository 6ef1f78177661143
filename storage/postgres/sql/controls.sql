-- Queue controls (migration 0012). Each query returns the columns
-- readControls reads: queue, paused, paused_at, coalesce(max_workers, 0),
-- created_at, updated_at.

-- fragment: queue_known
-- Whether queue $1 is known: it has a row in queue_controls (a node
-- registered it, or it was controlled before) or jobs that have not
-- finished. Each test runs on an index: the primary key, jobs_fetch, and the
-- partial indexes of running and pending jobs (both small sets).
(EXISTS (SELECT 1 FROM {schema}.queue_controls WHERE queue = $1)
 OR EXISTS (SELECT 1 FROM {schema}.jobs WHERE queue = $1 AND state IN ('available', 'scheduled', 'retryable'))
 OR EXISTS (SELECT 1 FROM {schema}.jobs WHERE queue = $1 AND state = 'running')
 OR EXISTS (SELECT 1 FROM {schema}.jobs WHERE queue = $1 AND state = 'pending'))

-- name: QueuePause
-- Pauses ($2 true) or resumes queue $1 if it is known; no row (and no
-- write) otherwise. A queue paused again keeps its paused_at. The hint on
-- channel $3 is sent on commit.
WITH written AS (
  INSERT INTO {schema}.queue_controls AS c (queue, paused, paused_at)
  SELECT $1, $2, CASE WHEN $2 THEN now() END
  WHERE {fragment:queue_known}
  ON CONFLICT (queue) DO UPDATE
  SET paused = excluded.paused,
      paused_at = CASE WHEN excluded.paused THEN coalesce(c.paused_at, now()) END,
      updated_at = now()
  RETURNING queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at
),
notified AS (
  SELECT count(pg_notify($3, '')) AS n FROM written
)
SELECT written.* FROM written, notified;

-- name: QueueScale
-- Sets the workers per node of queue $1 to $2 (NULL: each node's own
-- configuration) if it is known; no row (and no write) otherwise. The hint
-- on channel $3 is sent on commit.
WITH written AS (
  INSERT INTO {schema}.queue_controls AS c (queue, max_workers)
  SELECT $1, $2
  WHERE {fragment:queue_known}
  ON CONFLICT (queue) DO UPDATE
  SET max_workers = excluded.max_workers,
      updated_at = now()
  RETURNING queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at
),
notified AS (
  SELECT count(pg_notify($3, '')) AS n FROM written
)
SELECT written.* FROM written, notified;

-- name: QueueControls
-- The controls of the queues in $1 (every queue when NULL), by name.
SELECT queue, paused, paused_at, coalesce(max_workers, 0), created_at, updated_at
FROM {schema}.queue_controls
WHERE $1::text[] IS NULL OR queue = ANY ($1)
ORDER BY queue;

-- name: QueueRegister
-- Makes the queues in $1 known; existing rows are left as they are (no
-- write, no row version).
INSERT INTO {schema}.queue_controls (queue)
SELECT DISTINCT q FROM unnest($1::text[]) AS q
ON CONFLICT (queue) DO NOTHING;
