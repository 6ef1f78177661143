-- Queries that keep jobs and job graphs unique beside JobInsertUnique (see
-- storage.Uniqueness).

-- name: JobUniqueRelease
-- The jobs holding unique key $1 that were inserted at least $2
-- microseconds ago give it up (uniqueness counted from the first insert).
-- A concurrent release or insert of the key is waited for by the row lock;
-- the recheck of unique_key on the newest row version then finds the key
-- already given up and changes nothing.
UPDATE {schema}.jobs
SET unique_key = NULL
WHERE unique_key = $1::bytea
  AND created_at <= now() - $2::bigint * interval '1 microsecond';

-- name: JobGraphReserve
-- Takes key $1 for a graph; no row when another graph holds it. A key held
-- by a transaction not yet committed is waited for.
INSERT INTO {schema}.job_graphs (key) VALUES ($1)
ON CONFLICT (key) DO NOTHING
RETURNING key;

-- name: JobGraphGet
-- The jobs of the graph holding key $1 (a statement of its own, so that at
-- READ COMMITTED it sees the graph whose commit JobGraphReserve waited for).
SELECT names, job_ids FROM {schema}.job_graphs WHERE key = $1;

-- name: JobGraphRecord
UPDATE {schema}.job_graphs SET names = $2, job_ids = $3 WHERE key = $1;

-- name: JobGraphPrune
-- A graph's jobs were all created after it was reserved, and a job is pruned
-- no sooner than the retention after it finished, so only graphs older than
-- the retention ($1 microseconds) can have lost all their jobs.
WITH doomed AS (
  SELECT key AS doomed_key
  FROM {schema}.job_graphs g
  WHERE created_at < now() - $1::bigint * interval '1 microsecond'
    AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j WHERE j.id = ANY(g.job_ids))
  ORDER BY created_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.job_graphs USING doomed WHERE key = doomed_key;
