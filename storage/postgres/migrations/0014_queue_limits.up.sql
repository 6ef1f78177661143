-- Limits across nodes (queue.QueueLimits): what limited fetches need besides
-- the jobs table (see storage/postgres/sql/limits.sql).
--
-- queue_slots: the limits of a queue without partitions. A queue with a
-- global limit of N has N concurrency slots (kind 'c'), each naming the job
-- attempt that holds it; a slot is free again once that attempt is seen to
-- have ended (the job at that attempt and not running, or at a later one),
-- so nothing but the fetch writes here and no job's end has to. A rate of N
-- per period has N rate slots (kind 'r'), each with the stamp of the start
-- that last took it; it is free again a period later, so no window of a
-- period holds more than N starts. Fetches take free slots with FOR UPDATE
-- SKIP LOCKED: clients on many nodes fetch at once, each with its own slots.
CREATE TABLE {schema}.queue_slots (
  queue   text NOT NULL,
  kind    "char" NOT NULL,
  slot    integer NOT NULL,
  job_id  bigint,
  attempt integer,
  used_at timestamptz,
  PRIMARY KEY (queue, kind, slot)
);

-- queue_limits: the limits of a queue with partitions (PartitionBy). The
-- queue's row (partition_key '') is the lock every partitioned fetch of the
-- queue takes first, so that they count running jobs and recent starts one
-- after another (finding each partition's slots would need them all), and
-- holds the latest start stamp handed out (stamps only grow). One row per
-- partition (partition_key: the JSON array of the partition fields' values)
-- holds when it last got a job (round-robin) and, under a rate limit, the
-- stamps of its latest starts (at most the limit). Rows of partitions idle
-- for longer than the period (and a minute) are deleted by the fetches.
CREATE TABLE {schema}.queue_limits (
  queue         text NOT NULL,
  partition_key text NOT NULL,
  -- The latest starts, oldest first; only under a rate limit.
  starts        timestamptz[] NOT NULL DEFAULT '{}',
  -- When a job of this partition last started; on the queue's row, the
  -- latest stamp any fetch took.
  stamped_at    timestamptz,
  PRIMARY KEY (queue, partition_key)
);
-- The partitions busy within a period, and the idle ones to delete.
CREATE INDEX queue_limits_stamped ON {schema}.queue_limits (queue, stamped_at);
