-- The queue jobs runs await (storage.Awaits).

-- name: AwaitedJobsInsert
INSERT INTO {schema}.awaited_jobs (run_id, step, job_id, kind, queue)
SELECT $1, $2, j.id, j.kind, j.queue
FROM {schema}.jobs j
WHERE j.id = ANY($3::bigint[])
ON CONFLICT DO NOTHING;

-- name: AwaitedJobsResume
-- Resumes a run awaiting at $3 (guarded, so exactly one caller does) and
-- records, in the same statement, what its step $2's awaited jobs did, and
-- marks that step done in the step log.
WITH resumed AS (
  UPDATE {schema}.runs
  SET state = 'pending', awaiting = 0, updated_at = now()
  WHERE id = $1 AND state = 'awaiting' AND recovery_point = $3
  RETURNING {run_columns}
),
recorded AS (
  UPDATE {schema}.awaited_jobs a
  SET state = j.state, errors = j.errors, finalized_at = j.finalized_at
  FROM {schema}.jobs j
  WHERE a.run_id = $1 AND a.step = $2 AND j.id = a.job_id
    AND EXISTS (SELECT 1 FROM resumed)
),
step AS (
  UPDATE {schema}.run_steps s
  SET state = 'succeeded', finished_at = now()
  WHERE s.run_id = $1 AND s.name = $2 AND s.state = 'awaiting'
    AND EXISTS (SELECT 1 FROM resumed)
)
SELECT true, * FROM resumed
UNION ALL
SELECT false, {run_columns} FROM {schema}.runs
WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM resumed);

-- name: AwaitedJobsList
SELECT a.run_id, a.step, a.job_id, a.kind, a.queue, j.args,
       CASE WHEN a.state IS NOT NULL THEN a.state ELSE coalesce(j.state, '') END,
       CASE WHEN a.state IS NOT NULL THEN a.errors ELSE j.errors END,
       CASE WHEN a.state IS NOT NULL THEN a.finalized_at ELSE j.finalized_at END
FROM {schema}.awaited_jobs a
LEFT JOIN {schema}.jobs j ON j.id = a.job_id
WHERE a.run_id = $1 AND ($2 = '' OR a.step = $2)
ORDER BY a.step, a.job_id;
