-- Limits across nodes: the two statements of a limited fetch
-- (storage.LimitedFetcher), sent in one transaction, one after the other, in
-- one round trip. See docs/operations.md#limits for what they promise and
-- docs/architecture.md for why they are built this way.

-- name: JobFetchLimitedLock
-- Takes the queue's row of queue_limits (created on the first fetch) for the
-- rest of the transaction: the limited fetches of a queue, from every client,
-- run one after another. It also takes the fetch's start stamp, after the
-- lock and never before the last stamp handed out, so that stamps grow in
-- the order fetches held the lock (clock_timestamp: now() is when the
-- transaction began, possibly before an earlier holder's stamp).
-- JobFetchLimited must be a separate statement: its snapshot, taken after
-- this one returns, then sees every claim the earlier holders committed.
INSERT INTO {schema}.queue_limits AS l (queue, partition_key, stamped_at)
VALUES ($1, '', clock_timestamp())
ON CONFLICT (queue, partition_key) DO UPDATE
SET stamped_at = greatest(clock_timestamp(), l.stamped_at);

-- name: JobFetchLimited
-- Claims up to $2 jobs of queue $1 for worker $3 ($4: skip jobs that carry
-- runs), partitioned by the args fields $5 (none: one partition, ''), so
-- that no partition gets more than $6 jobs running (0: no such limit) or
-- more than $7 started in any window of $8 microseconds (0: none); a
-- partitioned fetch looks at up to $9 waiting jobs of partitions with room.
-- Under the lock of JobFetchLimitedLock:
--   stamp      this fetch's start stamp (the queue row's, just taken);
--   running    jobs running now, by partition;
--   recent     starts inside the window ending at the stamp, by partition
--              (the stamps of the latest $7 starts are kept per partition);
--   allowance  how many more each partition may start now (room);
--   scan       waiting jobs in fetch order, passing over the partitions
--              with no room (an unpartitioned queue with none scans nothing);
--   served     when each partition scanned last got a job;
--   chosen     round-robin: by priority, then each partition's first job
--              before any second, the partition served longest ago first;
--   claimed    the chosen rows still eligible (SKIP LOCKED), attempted at
--              the stamp, and their runs leased (as JobFetch does);
--   stamped    the partitions' stamps and start lists updated (the queue
--              row's stamp is taken already; without a rate limit it keeps
--              no list);
--   pruned     a few rows of partitions idle for the period (and a minute)
--              deleted, so the table holds the busy partitions only.
-- Each row is a claimed job (its leased run's columns, NULL without one),
-- then held (eligible jobs left unclaimed) and retry_us (when a rate limit
-- held jobs back: microseconds until the first start leaves the window);
-- with no job claimed, one row whose job columns are NULL.
WITH stamp AS (
  SELECT stamped_at AS ts, stamped_at - $8::bigint * interval '1 microsecond' AS window_start
  FROM {schema}.queue_limits
  WHERE queue = $1 AND partition_key = ''
),
running AS (
  SELECT {fragment:limit_key} AS part, count(*) AS n
  FROM {schema}.jobs
  WHERE $6::bigint > 0 AND state = 'running' AND queue = $1
  GROUP BY 1
),
recent AS (
  SELECT l.partition_key AS part, w.n, w.oldest
  FROM {schema}.queue_limits l
  CROSS JOIN stamp st
  CROSS JOIN LATERAL (SELECT count(*) AS n, min(s) AS oldest FROM unnest(l.starts) s WHERE s > st.window_start) w
  WHERE $7::bigint > 0 AND l.queue = $1 AND l.stamped_at > st.window_start
),
allowance AS (
  SELECT part,
         least(CASE WHEN $6::bigint > 0 THEN $6::bigint - coalesce(r.n, 0) END,
               CASE WHEN $7::bigint > 0 THEN $7::bigint - coalesce(c.n, 0) END) AS room
  FROM running r
  FULL JOIN recent c USING (part)
),
full_room AS (
  SELECT least(nullif($6::bigint, 0), nullif($7::bigint, 0)) AS n
),
gate AS (
  SELECT $2::int > 0
         AND (cardinality($5::text[]) > 0
              OR coalesce((SELECT room FROM allowance WHERE part = ''), (SELECT n FROM full_room)) > 0) AS open
),
scan AS (
  SELECT id, priority, scheduled_at, part
  FROM (
    SELECT id, priority, scheduled_at, {fragment:limit_key} AS part
    FROM {schema}.jobs
    WHERE state IN ('available', 'scheduled', 'retryable')
      AND queue = $1
      AND scheduled_at <= now()
      AND (NOT $4::boolean OR run_id IS NULL)
      -- A paused queue hands out nothing, as JobFetch (controls.sql).
      AND NOT EXISTS (SELECT 1 FROM {schema}.queue_controls WHERE queue = $1 AND paused)
      AND (SELECT open FROM gate)
    ORDER BY priority, scheduled_at, id
  ) j
  WHERE part <> ALL (ARRAY(SELECT part FROM allowance WHERE room <= 0))
  LIMIT CASE WHEN cardinality($5::text[]) = 0 THEN $2::int ELSE greatest($9::int, $2::int) END
),
ranked AS (
  SELECT s.id, s.priority, s.scheduled_at, s.part,
         row_number() OVER (PARTITION BY s.part ORDER BY s.priority, s.scheduled_at, s.id) AS rank,
         coalesce(a.room, (SELECT n FROM full_room)) AS room
  FROM scan s
  LEFT JOIN allowance a USING (part)
),
served AS (
  SELECT p.part, l.stamped_at
  FROM (SELECT DISTINCT part FROM scan) p
  LEFT JOIN {schema}.queue_limits l ON l.queue = $1 AND l.partition_key = p.part AND p.part <> ''
),
chosen AS (
  SELECT r.id, r.part
  FROM ranked r
  JOIN served sv USING (part)
  WHERE r.rank <= r.room
  ORDER BY r.priority, r.rank, sv.stamped_at NULLS FIRST, r.scheduled_at, r.id
  LIMIT $2::int
),
picked AS (
  SELECT j.id AS picked_id
  FROM chosen c
  CROSS JOIN LATERAL (
    SELECT id FROM {schema}.jobs
    WHERE id = c.id AND state IN ('available', 'scheduled', 'retryable')
    FOR UPDATE SKIP LOCKED
  ) j
),
{fragment:claim_picked_at_stamp},
{fragment:lease_claimed_runs},
counted AS (
  SELECT ch.part, count(*)::int AS n
  FROM claimed c
  JOIN chosen ch ON ch.id = c.id
  GROUP BY ch.part
),
stamped AS (
  INSERT INTO {schema}.queue_limits AS l (queue, partition_key, starts, stamped_at)
  SELECT $1, k.part,
         CASE WHEN $7::bigint > 0 THEN array_fill(st.ts, ARRAY[least(k.n, $7::bigint)::int]) ELSE '{}' END,
         st.ts
  FROM counted k
  CROSS JOIN stamp st
  WHERE $7::bigint > 0 OR k.part <> ''
  ON CONFLICT (queue, partition_key) DO UPDATE
  SET starts = CASE WHEN $7::bigint > 0 THEN ARRAY(
                 SELECT s FROM (SELECT s FROM unnest(l.starts || EXCLUDED.starts) s ORDER BY s DESC LIMIT $7::bigint) x
                 ORDER BY s)
               ELSE '{}' END,
      stamped_at = EXCLUDED.stamped_at
  RETURNING 1
),
pruned AS (
  DELETE FROM {schema}.queue_limits
  WHERE ctid = ANY (ARRAY(
          SELECT ctid FROM {schema}.queue_limits
          WHERE queue = $1 AND partition_key <> ''
            AND stamped_at < (SELECT ts FROM stamp) - greatest($8::bigint * interval '1 microsecond', interval '1 minute')
          ORDER BY stamped_at
          LIMIT 10))
    AND partition_key NOT IN (SELECT part FROM counted)
  RETURNING 1
),
summary AS (
  -- Held: fewer than the maximum claimed while a scanned job was left for
  -- want of room, or a partition has none (it may have jobs waiting).
  SELECT (SELECT count(*) FROM claimed) < $2::int
         AND (EXISTS (SELECT 1 FROM ranked WHERE rank > room)
              OR EXISTS (SELECT 1 FROM allowance WHERE room <= 0)) AS held,
         (SELECT extract(epoch FROM min(coalesce(c.oldest, st.ts)) + $8::bigint * interval '1 microsecond' - st.ts) * 1000000
          FROM recent c
          FULL JOIN counted k USING (part)
          CROSS JOIN stamp st
          WHERE $7::bigint > 0 AND coalesce(c.n, 0) + coalesce(k.n, 0) >= $7::bigint
          GROUP BY st.ts)::bigint AS retry_us
)
SELECT c.*, l.*, s.held, s.retry_us
FROM summary s
LEFT JOIN claimed c ON true
LEFT JOIN leased l ON l.leased_job_id = c.id;

-- name: JobFetchLimitedSlots
-- Makes sure queue $1 has concurrency slots 1..$2 and rate slots 1..$3
-- (JobFetchLimitedQueue); it writes only when the last one is missing.
INSERT INTO {schema}.queue_slots (queue, kind, slot)
SELECT $1, v.kind, g
FROM (VALUES ('c'::"char", $2::int), ('r'::"char", $3::int)) AS v (kind, n)
CROSS JOIN LATERAL generate_series(1, v.n) AS g
WHERE v.n > 0
  AND NOT EXISTS (SELECT 1 FROM {schema}.queue_slots s WHERE s.queue = $1 AND s.kind = v.kind AND s.slot = v.n)
ON CONFLICT (queue, kind, slot) DO NOTHING;

-- name: JobFetchLimitedQueue
-- JobFetchLimited for a queue without partitions ($5 empty), through the
-- queue's slots (migration 0013) instead of a lock, so that the fetches of
-- many clients run at once. The same parameters but the lookahead ($9), and
-- rows of the same shape.
--   stamp   this fetch's start stamp, taken once;
--   cslots  free concurrency slots (up to $2): never taken, or the attempt
--           that took one has ended, by positive evidence: its job is at
--           that attempt and not running, or at a later attempt. A claim
--           that committed after this statement's snapshot shows its job at
--           the attempt before, which proves nothing, so a slot is never
--           taken from a live holder. A minute after it was taken (no
--           snapshot is that old), only a holder seen running keeps its
--           slot: a job deleted, or a table emptied (ids reused), frees it;
--   rslots  free rate slots: never taken, or taken a period or more before
--           the stamp. Both lock the slots they return (SKIP LOCKED: a
--           slot another fetch holds is not free for this one); a slot that
--           changed since the snapshot is checked again as it is now;
--   room    the fewest free slots of either kind, at most $2;
--   picked, claimed, leased: as JobFetch, for room jobs, at the stamp;
--   ctaken, rtaken: each claimed job takes one slot of each kind.
WITH stamp AS (
  SELECT clock_timestamp() AS ts
),
cslots AS (
  SELECT s.slot, s.ctid AS row
  FROM {schema}.queue_slots s
  WHERE $6::int > 0 AND s.queue = $1 AND s.kind = 'c' AND s.slot <= $6::int
    AND (s.job_id IS NULL
         OR EXISTS (SELECT 1 FROM {schema}.jobs j
                    WHERE j.id = s.job_id AND (j.attempt > s.attempt OR (j.attempt = s.attempt AND j.state <> 'running')))
         OR (s.used_at < now() - interval '1 minute'
             AND NOT EXISTS (SELECT 1 FROM {schema}.jobs j
                             WHERE j.id = s.job_id AND j.attempt = s.attempt AND j.state = 'running')))
  ORDER BY s.slot
  LIMIT $2::int
  FOR UPDATE SKIP LOCKED
),
rslots AS (
  SELECT s.slot, s.ctid AS row
  FROM {schema}.queue_slots s
  WHERE $7::int > 0 AND s.queue = $1 AND s.kind = 'r' AND s.slot <= $7::int
    AND (s.used_at IS NULL
         OR s.used_at <= (SELECT ts FROM stamp) - $8::bigint * interval '1 microsecond')
  ORDER BY s.slot
  LIMIT $2::int
  FOR UPDATE SKIP LOCKED
),
room AS (
  SELECT least($2::bigint,
               CASE WHEN $6::int > 0 THEN (SELECT count(*) FROM cslots) END,
               CASE WHEN $7::int > 0 THEN (SELECT count(*) FROM rslots) END) AS n
),
picked AS (
  SELECT id AS picked_id
  FROM {schema}.jobs
  WHERE {fragment:job_fetchable}
    AND cardinality($5::text[]) = 0
  ORDER BY priority, scheduled_at, id
  LIMIT (SELECT n FROM room)
  FOR UPDATE SKIP LOCKED
),
{fragment:claim_picked_at_stamp},
{fragment:lease_claimed_runs},
-- Claimed jobs and the free slots (their rows, locked) paired in order:
-- each job takes a slot of each kind.
taken AS (
  SELECT z.crow, z.rrow, z.id, z.attempt
  FROM unnest(ARRAY(SELECT row FROM cslots ORDER BY slot),
              ARRAY(SELECT row FROM rslots ORDER BY slot),
              ARRAY(SELECT id FROM claimed ORDER BY id),
              ARRAY(SELECT attempt FROM claimed ORDER BY id)) AS z (crow, rrow, id, attempt)
  WHERE z.id IS NOT NULL
),
ctaken AS (
  UPDATE {schema}.queue_slots s
  SET job_id = t.id, attempt = t.attempt, used_at = (SELECT ts FROM stamp)
  FROM taken t
  WHERE s.ctid = t.crow
  RETURNING 1
),
rtaken AS (
  UPDATE {schema}.queue_slots s
  SET used_at = (SELECT ts FROM stamp)
  FROM taken t
  WHERE s.ctid = t.rrow
  RETURNING 1
),
summary AS (
  -- Held: the slots, not the jobs, ran out: there were fewer than $2 and
  -- the scan found that many jobs (or, with none, an eligible job waits).
  SELECT (SELECT n FROM room) < $2::int
         AND CASE WHEN (SELECT n FROM room) > 0 THEN (SELECT count(*) FROM picked) = (SELECT n FROM room)
             ELSE EXISTS (
               SELECT 1 FROM {schema}.jobs
               WHERE state IN ('available', 'scheduled', 'retryable')
                 AND queue = $1
                 AND scheduled_at <= now()
                 AND (NOT $4::boolean OR run_id IS NULL))
             END AS held,
         -- When the rate slots ran out: until the earliest of them is
         -- free again (those taken now were taken at the stamp).
         (SELECT extract(epoch FROM min(x.used_at) + $8::bigint * interval '1 microsecond' - (SELECT ts FROM stamp)) * 1000000
          FROM (
            SELECT s.used_at
            FROM {schema}.queue_slots s
            WHERE s.queue = $1 AND s.kind = 'r' AND s.slot <= $7::int
              AND s.ctid <> ALL (ARRAY(SELECT rrow FROM taken WHERE rrow IS NOT NULL))
            UNION ALL
            SELECT ts FROM stamp WHERE EXISTS (SELECT 1 FROM taken WHERE rrow IS NOT NULL)
          ) x
          WHERE $7::int > 0 AND (SELECT count(*) FROM rslots) - (SELECT count(*) FROM claimed) <= 0)::bigint AS retry_us
)
SELECT c.*, l.*, s.held, s.retry_us
FROM summary s
LEFT JOIN claimed c ON true
LEFT JOIN leased l ON l.leased_job_id = c.id;

-- fragment: limit_key
-- The partition of a job of a limited fetch: '' without partition fields
-- ($5 empty), else the JSON array of the values of args' fields $5 (null for
-- a missing field), as jsonb prints it.
CASE cardinality($5::text[])
  WHEN 0 THEN ''
  WHEN 1 THEN jsonb_build_array(args -> ($5::text[])[1])::text
  ELSE (SELECT jsonb_agg(args -> f ORDER BY o) FROM unnest($5::text[]) WITH ORDINALITY AS u (f, o))::text
END

-- fragment: claim_picked_at_stamp
-- The CTE "claimed": the jobs of the CTE "picked" made running for worker
-- $3, attempted at the fetch's stamp. JobFetchLimited and
-- JobFetchLimitedQueue share it.
claimed AS (
  UPDATE {schema}.jobs
  SET state = 'running',
      attempt = attempt + 1,
      attempted_at = (SELECT ts FROM stamp),
      attempted_by = $3,
      heartbeat_at = now()
  FROM picked
  WHERE id = picked_id
  RETURNING {job_columns}
)
