-- How long the jobs that could run now have waited, per queue.

-- name: JobQueueAges
-- The jobs a fetch could claim at ?1, per queue, with the earliest due time.
SELECT queue, count(*), min(scheduled_at)
FROM jobs
WHERE state IN ('available', 'scheduled', 'retryable') AND scheduled_at <= ?1
GROUP BY queue
ORDER BY queue;
