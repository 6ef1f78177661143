-- Queries on the job queue. Each query starts with a "-- name: X" line.
-- {schema} is the quoted schema; {job_columns} the columns scanJob reads.
-- All of them run at READ COMMITTED, with row locks where they claim rows.

-- name: JobInsertMany
-- Rows come in as parallel arrays; a job due now is available, a later one
-- scheduled, one with dependencies pending. depends_on comes as array
-- literals, since SQL arrays of arrays must be rectangular. Workers of queues
-- that got available jobs are notified (on commit, inside a transaction).
WITH input AS (
  SELECT * FROM unnest(
    $1::text[], $2::text[], $3::jsonb[], $4::uuid[], $5::text[], $6::smallint[],
    $7::integer[], $8::timestamptz[], $9::jsonb[], $10::bytea[], $11::smallint[],
    $13::text[], $14::text[], $15::jsonb[]
  ) WITH ORDINALITY AS t(queue, kind, args, run_id, state, priority, max_attempts,
                         scheduled_at, meta, unique_key, unique_states, depends_on,
                         dependency_failure, tags, ord)
),
inserted AS (
  INSERT INTO {schema}.jobs (queue, kind, args, run_id, state, priority, max_attempts,
                             scheduled_at, meta, unique_key, unique_states, depends_on,
                             dependency_failure, tags)
  SELECT queue, kind, args, run_id,
         CASE WHEN state = 'pending' THEN 'pending'
              WHEN coalesce(scheduled_at, now()) > now() THEN 'scheduled'
              ELSE 'available' END,
         priority, max_attempts, coalesce(scheduled_at, now()), meta, unique_key, unique_states,
         nullif(depends_on, '')::bigint[], coalesce(nullif(dependency_failure, ''), 'cancel'),
         -- Tags come as JSON arrays (arrays of arrays must be rectangular).
         CASE WHEN tags IS NOT NULL THEN ARRAY(SELECT jsonb_array_elements_text(tags)) END
  FROM input ORDER BY ord
  RETURNING {job_columns}
),
notified AS (
  SELECT count(pg_notify($12, {fragment:queue_hint})) AS n
  FROM (SELECT DISTINCT queue FROM inserted WHERE state = 'available') q
)
SELECT inserted.* FROM inserted, notified;

-- name: JobFetch
-- Claims up to $2 jobs of queue $1 for worker $3 and, in the same
-- statement, leases the runs of the workflow jobs among them to their new
-- attempts where the lease is free, so that the executor need not take the
-- lease in a transaction of its own. A run that is busy, parked or finished
-- is left alone; the executor then goes through RunLease as usual, which
-- also takes over leases whose holding attempt has ended. Only a job of the
-- run's own workflow kind (not, say, its finish callback) carries the run. Each job row carries its leased run's
-- columns, NULL when there is none.
WITH picked AS (
  SELECT id AS picked_id
  FROM {schema}.jobs
  WHERE {fragment:job_fetchable}
  ORDER BY priority, scheduled_at, id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
),
claimed AS (
  UPDATE {schema}.jobs
  SET state = 'running',
      attempt = attempt + 1,
      attempted_at = now(),
      attempted_by = $3,
      heartbeat_at = now()
  FROM picked
  WHERE id = picked_id
  RETURNING {job_columns}
),
{fragment:lease_claimed_runs}
SELECT c.*, l.*
FROM claimed c
LEFT JOIN leased l ON l.leased_job_id = c.id;

-- name: JobComplete
-- Completes running attempts and, in the same statement, releases pending
-- jobs whose last unfinished dependency was among them. (Sibling CTEs see
-- the rows as they were before the statement, hence the exclusion of done.)
WITH done AS (
  UPDATE {schema}.jobs
  SET state = 'completed', finalized_at = now(), heartbeat_at = NULL
  FROM unnest($1::bigint[], $2::integer[]) AS c(done_id, done_attempt)
  WHERE id = done_id AND state = 'running' AND attempt = done_attempt
  RETURNING id
),
released AS (
  UPDATE {schema}.jobs j
  SET state = CASE WHEN j.scheduled_at > now() THEN 'scheduled' ELSE 'available' END
  WHERE j.state = 'pending'
    AND j.depends_on && ARRAY(SELECT id FROM done)
    AND NOT EXISTS (
      SELECT 1 FROM {schema}.jobs d
      WHERE d.id = ANY(j.depends_on)
        AND d.id NOT IN (SELECT id FROM done)
        AND NOT {fragment:dependency_settled})
  RETURNING j.queue
),
notified AS (
  SELECT count(pg_notify($3, {fragment:queue_hint})) AS n FROM (SELECT DISTINCT queue FROM released) q
)
SELECT done.id FROM done, notified;

-- name: JobResolveDependencies
-- One level of dependency resolution: pending jobs with a cancelled or
-- discarded dependency are cancelled or discarded as they asked (unless they
-- ignore failures); pending jobs whose dependencies all finished acceptably
-- are released. Only dependents of the jobs in $2 are looked at (through
-- jobs_pending_deps); NULL looks at every pending job. Returns the ids it
-- failed: their dependents are the next level.
WITH failed AS (
  UPDATE {schema}.jobs j
  SET state = CASE j.dependency_failure WHEN 'discard' THEN 'discarded' ELSE 'cancelled' END,
      finalized_at = now(),
      errors = j.errors || jsonb_build_array(jsonb_build_object(
        'attempt', j.attempt, 'at', now(),
        'error', 'dependency ' || d.id || ' (' || d.kind || ') was ' || d.state))
  FROM {schema}.jobs d
  WHERE j.state = 'pending'
    AND ($2::bigint[] IS NULL OR j.depends_on && $2::bigint[])
    AND j.dependency_failure <> 'ignore'
    AND d.id = ANY(j.depends_on)
    AND d.state IN ('cancelled', 'discarded')
  RETURNING j.id
),
released AS (
  UPDATE {schema}.jobs j
  SET state = CASE WHEN j.scheduled_at > now() THEN 'scheduled' ELSE 'available' END
  WHERE j.state = 'pending'
    AND ($2::bigint[] IS NULL OR j.depends_on && $2::bigint[])
    AND j.id NOT IN (SELECT id FROM failed)
    AND NOT EXISTS (
      SELECT 1 FROM {schema}.jobs d
      WHERE d.id = ANY(j.depends_on)
        AND NOT {fragment:dependency_settled})
  RETURNING j.queue
),
notified AS (
  SELECT count(pg_notify($1, {fragment:queue_hint})) AS n FROM (SELECT DISTINCT queue FROM released) q
)
SELECT ARRAY(SELECT id FROM failed), (SELECT count(*) FROM released) FROM notified;

-- name: JobFinish
-- Ends the attempt and frees the run lease that attempt may still hold (its
-- executor could not release it: the database was unreachable), so the
-- job's next attempt need not wait for the lease to time out.
WITH ended AS (
UPDATE {schema}.jobs
SET state = $3,
    scheduled_at = coalesce($4, scheduled_at),
    finalized_at = CASE WHEN $3 IN ('cancelled', 'discarded') THEN now() END,
    heartbeat_at = NULL,
    errors = CASE WHEN $5::jsonb IS NULL THEN errors ELSE errors || jsonb_build_array($5::jsonb) END,
    -- A snooze (scheduled again) does not count as an attempt.
    max_attempts = max_attempts + CASE WHEN $3 = 'scheduled' THEN 1 ELSE 0 END,
    meta = CASE WHEN $3 = 'scheduled'
                THEN jsonb_set(meta, '{snoozes}', to_jsonb(coalesce((meta->>'snoozes')::integer, 0) + 1))
                ELSE meta END
WHERE id = $1 AND state = 'running' AND attempt = $2
RETURNING id, attempt, run_id
),
{fragment:release_ended_leases}
SELECT id FROM ended;

-- name: JobLostAttempts
-- The attempts ($1 ids, $2 attempt numbers) that are no longer running (an
-- operator cancelled them, or they were rescued and perhaps claimed again),
-- with their job's state and attempt now. It only reads: workers run it when
-- a control notification says to look, and any role may send one.
SELECT held_id, held_attempt, j.state, j.attempt
FROM unnest($1::bigint[], $2::integer[]) AS h(held_id, held_attempt)
JOIN {schema}.jobs j ON j.id = held_id
WHERE NOT (j.state = 'running' AND j.attempt = held_attempt);

-- name: QueueHints
-- The payloads of the insert notifications of the queues in $1, in order.
SELECT {fragment:queue_hint}
FROM unnest($1::text[]) WITH ORDINALITY AS q(queue, ord)
ORDER BY ord;

-- name: JobHeartbeat
-- Refreshes the attempts ($1 ids, $2 attempt numbers) that are still
-- running and returns the others (cancelled by an operator, or rescued and
-- perhaps claimed again) with their job's state and attempt now.
WITH held AS (
  SELECT * FROM unnest($1::bigint[], $2::integer[]) AS h(held_id, held_attempt)
),
beat AS (
  UPDATE {schema}.jobs
  SET heartbeat_at = now()
  FROM held
  WHERE id = held_id AND attempt = held_attempt AND state = 'running'
  RETURNING id AS beat_id, attempt AS beat_attempt
)
SELECT held_id, held_attempt, j.state, j.attempt
FROM held
JOIN {schema}.jobs j ON j.id = held_id
WHERE (held_id, held_attempt) NOT IN (SELECT beat_id, beat_attempt FROM beat);

-- name: JobRescue
-- Rescues running jobs whose worker stopped heartbeating, and in the same
-- statement frees the run leases those job attempts held (their runs go back
-- to pending), so the job's next attempt resumes the run at once.
WITH stale AS (
  SELECT id AS stale_id
  FROM {schema}.jobs
  WHERE state = 'running' AND heartbeat_at < now() - $1::bigint * interval '1 microsecond'
    AND (NOT $3::boolean OR run_id IS NULL)
    AND ($4::bigint[] IS NULL OR NOT (id = ANY($4::bigint[])))
  ORDER BY heartbeat_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
),
ended AS (
  UPDATE {schema}.jobs
  SET state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END,
      scheduled_at = now(),
      finalized_at = CASE WHEN attempt >= max_attempts THEN now() END,
      heartbeat_at = NULL,
      errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempt,
        'at', now(),
        'error', 'rescued: worker ' || coalesce(attempted_by, '?') || ' stopped heartbeating'))
  FROM stale
  WHERE id = stale_id
  RETURNING {job_columns}
),
{fragment:release_ended_leases}
SELECT * FROM ended;

-- name: JobGet
SELECT {job_columns} FROM {schema}.jobs WHERE id = $1;

-- name: JobList
SELECT {job_columns}
FROM {schema}.jobs
WHERE ($1::text[] IS NULL OR state = ANY($1))
  AND ($2::text = '' OR queue = $2)
  AND ($3::text = '' OR kind = $3)
  AND ($4::uuid IS NULL OR run_id = $4)
  AND ($5::bigint[] IS NULL OR id = ANY($5))
  AND ($8::text[] IS NULL OR tags @> $8)
  AND id > $6
ORDER BY id
LIMIT $7;

-- name: JobCancel
-- Cancels the job and frees the run lease its attempt held, if any.
WITH ended AS (
  UPDATE {schema}.jobs
  SET state = 'cancelled', finalized_at = now(), heartbeat_at = NULL
  WHERE id = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')
  RETURNING {job_columns}
),
{fragment:release_ended_leases}
SELECT * FROM ended;

-- name: JobRetry
-- A job out of attempts gets exactly one more; the attempt count is kept, so
-- the error history and backoff stay meaningful. Workers of its queue are
-- woken ($2 is the insert channel; inside a transaction, on commit).
WITH retried AS (
  UPDATE {schema}.jobs
  SET state = 'available',
      scheduled_at = now(),
      finalized_at = NULL,
      max_attempts = greatest(max_attempts, attempt + 1)
  WHERE id = $1 AND state NOT IN ('running', 'pending')
  RETURNING {job_columns}
)
SELECT retried.*
FROM retried, LATERAL (SELECT pg_notify($2, {fragment:queue_hint})) AS woken;

-- name: JobInsertUnique
-- Inserts one unique job unless a job with its unique key exists in one of
-- the states that job's mask covers; then the existing job is returned, with
-- the fields the caller asked to replace ($11 scheduled_at, $12 args, $13
-- priority, $14 max_attempts) updated if it has not started yet and they
-- differ. A duplicate that changes nothing writes nothing: no row version, no
-- identity value, no notification. Workers are woken ($15) only when a job
-- became available: inserted so, or moved from scheduled to now.
--
-- The existing job is read first, without a lock. The statement returns no
-- row when it lost a race it cannot see from its snapshot: a job with the key
-- committed after the snapshot was taken (the insert then conflicts and does
-- nothing), or the existing job changed state before the update. The driver
-- runs it again, with a fresh snapshot; inside a REPEATABLE READ or
-- SERIALIZABLE transaction the same races raise a serialization failure
-- instead. The last column tells the driver whether the job is a duplicate.
WITH new AS (
  SELECT coalesce($8::timestamptz, now()) AS new_scheduled_at
),
existing AS (
  SELECT j.id AS existing_id, j.state AS old_state,
         j.state IN ('available', 'scheduled') AND (
              ($11 AND j.scheduled_at <> new.new_scheduled_at)
           OR ($12 AND j.args <> $3::jsonb)
           OR ($13 AND j.priority <> $5::smallint)
           OR ($14 AND j.max_attempts <> $6::integer)) AS changes
  FROM {schema}.jobs j, new
  WHERE j.unique_key = $9::bytea AND (j.unique_states & {schema}.job_state_bit(j.state)) <> 0
),
inserted AS (
  INSERT INTO {schema}.jobs (queue, kind, args, run_id, state, priority, max_attempts,
                             scheduled_at, meta, unique_key, unique_states, tags)
  SELECT $1, $2, $3::jsonb, $4::uuid,
         CASE WHEN new_scheduled_at > now() THEN 'scheduled' ELSE 'available' END,
         $5::smallint, $6::integer, new_scheduled_at, $7::jsonb, $9::bytea, $10::smallint, $16::text[]
  FROM new
  WHERE NOT EXISTS (SELECT 1 FROM existing)
  ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND (unique_states & {schema}.job_state_bit(state)) <> 0
  DO NOTHING
  RETURNING {job_columns}, state = 'available' AS wake, false AS duplicate
),
replaced AS (
  UPDATE {schema}.jobs j
  SET scheduled_at = CASE WHEN $11 THEN new.new_scheduled_at ELSE j.scheduled_at END,
      state = CASE WHEN $11 THEN CASE WHEN new.new_scheduled_at > now() THEN 'scheduled' ELSE 'available' END
                   ELSE j.state END,
      args = CASE WHEN $12 THEN $3::jsonb ELSE j.args END,
      priority = CASE WHEN $13 THEN $5::smallint ELSE j.priority END,
      max_attempts = CASE WHEN $14 THEN $6::integer ELSE j.max_attempts END
  FROM existing e, new
  -- Rechecked on the newest version of a concurrently updated row: the job
  -- is still in the state it was read in (so old_state is the state it
  -- leaves) and still differs.
  WHERE j.id = e.existing_id AND e.changes AND j.state = e.old_state
    AND (   ($11 AND j.scheduled_at <> new.new_scheduled_at)
         OR ($12 AND j.args <> $3::jsonb)
         OR ($13 AND j.priority <> $5::smallint)
         OR ($14 AND j.max_attempts <> $6::integer))
  RETURNING {job_columns}, j.state = 'available' AND e.old_state <> 'available' AS wake, true AS duplicate
),
kept AS (
  SELECT {job_columns}, false AS wake, true AS duplicate
  FROM {schema}.jobs, existing
  WHERE id = existing_id AND NOT changes
),
result AS (
  SELECT * FROM inserted UNION ALL SELECT * FROM replaced UNION ALL SELECT * FROM kept
),
notified AS (
  SELECT count(pg_notify($15, {fragment:queue_hint})) AS n FROM result WHERE wake
)
SELECT result.* FROM result, notified;

-- name: JobMakeDue
-- Testing and operator aid: make a queue's scheduled and retryable jobs due now.
UPDATE {schema}.jobs
SET scheduled_at = now()
WHERE queue = $1 AND state IN ('scheduled', 'retryable') AND scheduled_at > now();

-- name: JobClaim
-- Claims one specific job that could run, whatever its scheduled time.
UPDATE {schema}.jobs
SET state = 'running',
    attempt = attempt + 1,
    attempted_at = now(),
    attempted_by = $2,
    heartbeat_at = now()
WHERE id = $1 AND state IN ('available', 'scheduled', 'retryable')
RETURNING {job_columns};

-- name: JobStats
SELECT queue, state, count(*), min(scheduled_at) FILTER (WHERE state IN ('available', 'scheduled', 'retryable'))
FROM {schema}.jobs
GROUP BY queue, state
ORDER BY queue, state;

-- name: Notify
SELECT pg_notify($1, $2);

-- fragment: release_ended_leases
-- The CTE that frees the run leases held by the job attempts of the CTE
-- "ended" (columns id, attempt, run_id): a lease is held only by an attempt
-- of a job of its run, so the run is found by the job's run_id. A run that
-- was running goes back to pending; a parked or finished one keeps its state.
released AS (
  UPDATE {schema}.runs r
  SET locked_by = NULL, locked_at = NULL, locked_job_id = NULL, locked_attempt = NULL,
      state = CASE WHEN r.state = 'running' THEN 'pending' ELSE r.state END,
      updated_at = now()
  FROM ended
  WHERE r.id = ended.run_id AND r.locked_job_id = ended.id AND r.locked_attempt = ended.attempt
)

-- fragment: queue_hint
-- The payload of an insert notification for the column queue: a keyed hash
-- of the queue name (see migration 0008), so a role that may LISTEN but not
-- read the tables learns no queue names. Truncating SHA-256 to 16 bytes also
-- rules out length extension of the key-prefixed hash.
encode(substr(sha256((SELECT key FROM {schema}.notify_key) || convert_to(queue, 'UTF8')), 1, 16), 'hex')

-- fragment: dependency_settled
-- Dependency d no longer holds back dependent j: it completed, or it failed
-- (cancelled, discarded) and j ignores failures.
(d.state = 'completed'
 OR (j.dependency_failure = 'ignore' AND d.state IN ('cancelled', 'discarded')))

-- fragment: job_fetchable
-- The condition on a row of jobs that a fetch of queue $1 may claim it ($4:
-- plain jobs only, no run's). A paused queue hands out nothing (queue
-- controls, controls.sql): once a pause has committed, no fetch that starts
-- later claims its jobs, whichever node runs it and whatever that node has
-- heard. One primary-key probe per statement (an InitPlan). JobFetch and
-- JobFetchLimitedQueue share it.
state IN ('available', 'scheduled', 'retryable')
    AND queue = $1
    AND scheduled_at <= now()
    AND (NOT $4::boolean OR run_id IS NULL)
    AND NOT EXISTS (SELECT 1 FROM {schema}.queue_controls WHERE queue = $1 AND paused)

-- fragment: lease_claimed_runs
-- The CTE that leases the runs of the jobs of the CTE "claimed" (columns
-- id, attempt, run_id, kind) to their new attempts where the lease is free;
-- JobFetch and JobFetchLimited share it.
leased AS (
  UPDATE {schema}.runs r
  -- The token names the attempt for operators and is unique besides: a
  -- claim lost in a database crash (claims commit asynchronously) gives the
  -- same attempt number to the next claim, and the old holder, still
  -- running, must not pass the new holder's fence.
  SET locked_by = 'job:' || c.id || ':' || c.attempt || ':' || md5(random()::text || clock_timestamp()::text),
      locked_at = now(),
      locked_job_id = c.id,
      locked_attempt = c.attempt,
      last_run_at = now(),
      state = 'running',
      updated_at = now()
  FROM claimed c
  WHERE r.id = c.run_id
    AND r.workflow = c.kind
    AND r.state IN ('pending', 'running')
    AND (r.locked_by IS NULL OR (r.locked_job_id = c.id AND r.locked_attempt < c.attempt))
  RETURNING c.id AS leased_job_id, {run_columns_r}
)
