-- The queue jobs runs await (storage.Awaits), migration 0002.

-- name: AwaitedJobsInsert
INSERT INTO awaited_jobs (run_id, step, job_id, kind, queue)
SELECT ?1, ?2, j.id, j.kind, j.queue
FROM jobs j
WHERE j.id IN (SELECT value FROM json_each(?3))
ON CONFLICT DO NOTHING;

-- name: AwaitedJobsResume
-- Resumes run ?1 awaiting at ?3 (guarded, so exactly one caller does).
UPDATE runs
SET state = 'pending', awaiting = 0, updated_at = ?4
WHERE id = ?1 AND state = 'awaiting' AND recovery_point = ?3
RETURNING {run_columns};

-- name: AwaitedJobsRecord
-- Records what step ?2's awaited jobs did, as the run resumes.
UPDATE awaited_jobs AS a
SET state = j.state, errors = j.errors, finalized_at = j.finalized_at
FROM jobs j
WHERE a.run_id = ?1 AND a.step = ?2 AND j.id = a.job_id;

-- name: AwaitedJobsStepDone
UPDATE run_steps
SET state = 'succeeded', finished_at = ?3
WHERE run_id = ?1 AND name = ?2 AND state = 'awaiting';

-- name: AwaitedJobsList
SELECT a.run_id, a.step, a.job_id, a.kind, a.queue, j.args,
       CASE WHEN a.state IS NOT NULL THEN a.state ELSE coalesce(j.state, '') END,
       CASE WHEN a.state IS NOT NULL THEN a.errors ELSE j.errors END,
       CASE WHEN a.state IS NOT NULL THEN a.finalized_at ELSE j.finalized_at END
FROM awaited_jobs a
LEFT JOIN jobs j ON j.id = a.job_id
WHERE a.run_id = ?1 AND (?2 = '' OR a.step = ?2)
ORDER BY a.step, a.job_id;
