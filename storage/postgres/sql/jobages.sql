-- How long the jobs that could run now have waited, per queue.

-- name: JobQueueAges
-- The jobs a fetch could claim now (see JobFetch), counted per queue with
-- the earliest due time and the microseconds since then.
SELECT queue, count(*), min(scheduled_at), (extract(epoch FROM now() - min(scheduled_at)) * 1000000)::bigint
FROM {schema}.jobs
WHERE state IN ('available', 'scheduled', 'retryable') AND scheduled_at <= now()
GROUP BY queue
ORDER BY queue;
