-- Limits across clients (storage.LimitedFetcher), migration 0002. The
-- limited fetch runs in one write transaction of the single writer, so its
-- reads and writes need no row locks: limits_fetch.go decides in Go from
-- what these queries read.

-- name: LimitSlotsEnsure
-- Makes sure queue ?1 has slots 1..?3 of kind ?2.
WITH RECURSIVE g (n) AS (SELECT 1 WHERE ?3 > 0 UNION ALL SELECT n + 1 FROM g WHERE n < ?3)
INSERT INTO queue_slots (queue, kind, slot)
SELECT ?1, ?2, n FROM g
WHERE NOT EXISTS (SELECT 1 FROM queue_slots s WHERE s.queue = ?1 AND s.kind = ?2 AND s.slot = ?3)
ON CONFLICT (queue, kind, slot) DO NOTHING;

-- name: LimitSlotsFreeC
-- Free concurrency slots of queue ?1 up to slot ?2: never taken, or the
-- attempt that took one has ended (its job at that attempt and not running,
-- at a later attempt, or gone).
SELECT s.slot FROM queue_slots s
WHERE s.queue = ?1 AND s.kind = 'c' AND s.slot <= ?2
  AND (s.job_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id AND j.attempt = s.attempt AND j.state = 'running'))
ORDER BY s.slot
LIMIT ?3 + 0;

-- name: LimitSlotsFreeR
-- Free rate slots of queue ?1 up to slot ?2: never taken, or taken at or
-- before ?3 (a period before the stamp).
SELECT s.slot FROM queue_slots s
WHERE s.queue = ?1 AND s.kind = 'r' AND s.slot <= ?2
  AND (s.used_at IS NULL OR s.used_at <= ?3)
ORDER BY s.slot
LIMIT ?4 + 0;

-- name: LimitSlotTakeC
UPDATE queue_slots SET job_id = ?3, attempt = ?4, used_at = ?5
WHERE queue = ?1 AND kind = 'c' AND slot = ?2;

-- name: LimitSlotTakeR
UPDATE queue_slots SET used_at = ?3 WHERE queue = ?1 AND kind = 'r' AND slot = ?2;

-- name: LimitRateOldest
-- The earliest use among the rate slots 1..?2 of queue ?1.
SELECT min(used_at) FROM queue_slots WHERE queue = ?1 AND kind = 'r' AND slot <= ?2;

-- name: LimitEligible
-- The jobs a fetch of queue ?1 could claim at ?2 (?3: none that carry
-- runs), in fetch order; none while the queue is paused (controls.sql).
SELECT id, priority, scheduled_at, args FROM jobs
WHERE state IN ('available', 'scheduled', 'retryable')
  AND queue = ?1
  AND scheduled_at <= ?2
  AND (NOT ?3 OR run_id IS NULL)
  AND NOT EXISTS (SELECT 1 FROM queue_controls WHERE queue = ?1 AND paused)
ORDER BY priority, scheduled_at, id;

-- name: LimitEligibleAny
-- Whether a job of queue ?1 is eligible at ?2 (?3: none that carry runs).
SELECT EXISTS (
  SELECT 1 FROM jobs
  WHERE state IN ('available', 'scheduled', 'retryable')
    AND queue = ?1 AND scheduled_at <= ?2 AND (NOT ?3 OR run_id IS NULL));

-- name: LimitRunning
-- The args of the running jobs of queue ?1.
SELECT args FROM jobs WHERE state = 'running' AND queue = ?1;

-- name: LimitClaim
UPDATE jobs
SET state = 'running',
    attempt = attempt + 1,
    attempted_at = ?2,
    attempted_by = ?3,
    heartbeat_at = ?4
WHERE id = ?1 AND state IN ('available', 'scheduled', 'retryable')
RETURNING {job_columns};

-- name: LimitQueueStamp
-- Takes the stamp of a partitioned fetch of queue ?1: ?2, or the last stamp
-- handed out if the clock is behind it.
INSERT INTO queue_limits AS l (queue, partition_key, stamped_at)
VALUES (?1, '', ?2)
ON CONFLICT (queue, partition_key) DO UPDATE
SET stamped_at = max(excluded.stamped_at, coalesce(l.stamped_at, excluded.stamped_at))
RETURNING stamped_at;

-- name: LimitPartitions
-- The partitions of queue ?1 (their start lists and when each last got a
-- job).
SELECT partition_key, starts, stamped_at FROM queue_limits
WHERE queue = ?1 AND partition_key <> '';

-- name: LimitPartitionStamp
INSERT INTO queue_limits AS l (queue, partition_key, starts, stamped_at)
VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (queue, partition_key) DO UPDATE
SET starts = excluded.starts, stamped_at = excluded.stamped_at;

-- name: LimitPrune
-- Deletes up to 10 rows of partitions of queue ?1 idle since before ?2.
-- ?3 lists the partitions this fetch served.
DELETE FROM queue_limits WHERE queue = ?1 AND partition_key IN (
  SELECT partition_key FROM queue_limits
  WHERE queue = ?1 AND partition_key <> '' AND stamped_at < ?2
    AND partition_key NOT IN (SELECT value FROM json_each(?3))
  ORDER BY stamped_at
  LIMIT 10);
