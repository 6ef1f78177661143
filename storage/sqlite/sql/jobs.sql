-- Queries on the job queue. Each query starts with a "-- name: X" line;
-- {job_columns} are the columns scanJob reads. Times are microseconds since
-- the Unix epoch, passed in by the driver (its clock; see clock.go); JSON is
-- text; lists of ids or attempts come in as JSON arrays. The writes run in
-- the driver's write transactions, one at a time (BEGIN IMMEDIATE), so a
-- read followed by a write in one transaction sees no other writer between
-- them.

-- name: JobInsert
-- The driver chose the state (available, scheduled or pending) and the time.
INSERT INTO jobs (queue, kind, args, run_id, state, priority, max_attempts, scheduled_at, meta,
                  unique_key, unique_states, depends_on, dependency_failure, created_at, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING {job_columns};

-- name: JobDepsInsert
-- The dependency edges of job $1, whose depends_on ($2) is a JSON array.
INSERT OR IGNORE INTO job_deps (job_id, dep_id)
SELECT $1, value FROM json_each($2);

-- name: JobUniqueFind
-- The job holding unique key $1: one in a state its own mask covers. The
-- condition is the predicate of the index jobs_unique_key, written the same
-- way so that the index serves it.
SELECT {job_columns}
FROM jobs
WHERE unique_key = $1 AND {fragment:unique_live};

-- name: JobUniqueReplace
UPDATE jobs
SET scheduled_at = $2, state = $3, args = $4, priority = $5, max_attempts = $6
WHERE id = $1
RETURNING {job_columns};

-- name: JobMakeDue
UPDATE jobs
SET scheduled_at = $2
WHERE queue = $1 AND state IN ('scheduled', 'retryable') AND scheduled_at > $2;

-- name: JobFetch
-- Claims up to $2 jobs of queue $1 for worker $3 at time $4, highest
-- priority and earliest scheduled first, through the partial index
-- jobs_fetch. With $5 jobs that carry runs are left alone.
UPDATE jobs
SET state = 'running',
    attempt = attempt + 1,
    attempted_at = $4,
    attempted_by = $3,
    heartbeat_at = $4
WHERE id IN (
  SELECT id FROM jobs
  WHERE state IN ('available', 'scheduled', 'retryable')
    AND queue = $1
    AND scheduled_at <= $4
    AND (NOT $5 OR run_id IS NULL)
    -- A paused queue hands out nothing (queue controls, controls.sql).
    AND NOT EXISTS (SELECT 1 FROM queue_controls WHERE queue = $1 AND paused)
  ORDER BY priority, scheduled_at, id
  LIMIT $2 + 0)
RETURNING {job_columns};

-- name: JobFetchLease
-- Leases run $1 to the attempt ($3, $4) a fetch just claimed, when the
-- lease is free (nobody holds it, or an earlier attempt of the same job
-- does) and the job is of the run's own workflow kind ($6). A run that is
-- busy, resting or finished is left alone: the executor then goes through
-- RunLease, which also takes over leases whose attempt has ended.
UPDATE runs
SET locked_by = $2,
    locked_at = $5,
    locked_job_id = $3,
    locked_attempt = $4,
    last_run_at = $5,
    state = 'running',
    updated_at = $5
WHERE id = $1
  AND workflow = $6
  AND state IN ('pending', 'running')
  AND (locked_by IS NULL OR (locked_job_id = $3 AND locked_attempt < $4))
RETURNING {run_columns};

-- name: JobClaim
-- Claims one specific job that could run, whatever its scheduled time.
UPDATE jobs
SET state = 'running',
    attempt = attempt + 1,
    attempted_at = $3,
    attempted_by = $2,
    heartbeat_at = $3
WHERE id = $1 AND state IN ('available', 'scheduled', 'retryable')
RETURNING {job_columns};

-- name: JobComplete
-- Completes the running attempts in $1 ([[id, attempt], ...]).
UPDATE jobs
SET state = 'completed', finalized_at = $2, heartbeat_at = NULL
FROM (SELECT value ->> 0 AS done_id, value ->> 1 AS done_attempt FROM json_each($1)) AS done
WHERE jobs.id = done.done_id AND jobs.state = 'running' AND jobs.attempt = done.done_attempt
RETURNING jobs.id;

-- name: JobDependents
-- The pending jobs that depend on a job of $1 (a JSON array of ids).
SELECT DISTINCT x.job_id
FROM job_deps x
JOIN jobs j ON j.id = x.job_id
WHERE x.dep_id IN (SELECT value FROM json_each($1)) AND j.state = 'pending';

-- name: JobPendingAll
SELECT id FROM jobs WHERE state = 'pending';

-- name: JobFailDependents
-- Of the pending jobs in $1, those with a cancelled or discarded dependency
-- are cancelled or discarded as they asked (unless they ignore failures),
-- the dependency named in their error history ($2 is now, $3 now as text).
UPDATE jobs
SET state = CASE dependency_failure WHEN 'discard' THEN 'discarded' ELSE 'cancelled' END,
    finalized_at = $2,
    errors = json_insert(errors, '$[#]', json_object(
      'attempt', attempt,
      'at', $3,
      'error', (SELECT 'dependency ' || d.id || ' (' || d.kind || ') was ' || d.state
                FROM job_deps x JOIN jobs d ON d.id = x.dep_id
                WHERE x.job_id = jobs.id AND d.state IN ('cancelled', 'discarded')
                ORDER BY d.id LIMIT 1)))
WHERE id IN (SELECT value FROM json_each($1))
  AND state = 'pending'
  AND dependency_failure <> 'ignore'
  AND EXISTS (SELECT 1 FROM job_deps x JOIN jobs d ON d.id = x.dep_id
              WHERE x.job_id = jobs.id AND d.state IN ('cancelled', 'discarded'))
RETURNING id;

-- name: JobReleaseDependents
-- Of the pending jobs in $1, those whose dependencies no longer hold them
-- back are released ($2 is now). A dependency that no longer exists
-- (pruned) holds nothing back.
UPDATE jobs
SET state = CASE WHEN scheduled_at > $2 THEN 'scheduled' ELSE 'available' END
WHERE id IN (SELECT value FROM json_each($1))
  AND state = 'pending'
  AND NOT EXISTS (
    SELECT 1 FROM job_deps x JOIN jobs d ON d.id = x.dep_id
    WHERE x.job_id = jobs.id AND NOT {fragment:dependency_settled})
RETURNING queue, state;

-- name: JobFinish
-- Ends attempt $2 of job $1 in state $3. A snooze (scheduled again) does not
-- count as an attempt and is counted in meta.snoozes.
UPDATE jobs
SET state = $3,
    scheduled_at = coalesce($4, scheduled_at),
    finalized_at = CASE WHEN $3 IN ('cancelled', 'discarded') THEN $6 END,
    heartbeat_at = NULL,
    errors = CASE WHEN $5 IS NULL THEN errors ELSE json_insert(errors, '$[#]', json($5)) END,
    max_attempts = max_attempts + CASE WHEN $3 = 'scheduled' THEN 1 ELSE 0 END,
    meta = CASE WHEN $3 = 'scheduled'
                THEN json_set(meta, '$.snoozes', coalesce(CAST(json_extract(meta, '$.snoozes') AS INTEGER), 0) + 1)
                ELSE meta END
WHERE id = $1 AND state = 'running' AND attempt = $2
RETURNING id, attempt, run_id;

-- name: JobReleaseLease
-- Frees the run lease that attempt ($2, $3) of a job of run $1 held, now
-- that the attempt ended: a running run goes back to pending, a resting or
-- finished one keeps its state.
UPDATE runs
SET locked_by = NULL, locked_at = NULL, locked_job_id = NULL, locked_attempt = NULL,
    state = CASE WHEN state = 'running' THEN 'pending' ELSE state END,
    updated_at = $4
WHERE id = $1 AND locked_job_id = $2 AND locked_attempt = $3;

-- name: JobHeartbeat
-- Refreshes the attempts in $1 ([[id, attempt], ...]) that are still running.
UPDATE jobs
SET heartbeat_at = $2
FROM (SELECT value ->> 0 AS held_id, value ->> 1 AS held_attempt FROM json_each($1)) AS held
WHERE jobs.id = held.held_id AND jobs.attempt = held.held_attempt AND jobs.state = 'running';

-- name: JobLostAttempts
-- The attempts of $1 that are no longer running, with their job's state and
-- attempt now.
SELECT held.held_id, held.held_attempt, j.state, j.attempt
FROM (SELECT value ->> 0 AS held_id, value ->> 1 AS held_attempt FROM json_each($1)) AS held
JOIN jobs j ON j.id = held.held_id
WHERE NOT (j.state = 'running' AND j.attempt = held.held_attempt);

-- name: JobRescue
-- Rescues up to $2 running jobs whose heartbeat is older than $1, except
-- those in $4 (and, with $3, those that carry runs). $5 is now, $6 now as
-- text for the error history.
UPDATE jobs
SET state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END,
    scheduled_at = $5,
    finalized_at = CASE WHEN attempt >= max_attempts THEN $5 END,
    heartbeat_at = NULL,
    errors = json_insert(errors, '$[#]', json_object(
      'attempt', attempt,
      'at', $6,
      'error', 'rescued: worker ' || coalesce(attempted_by, '?') || ' stopped heartbeating'))
WHERE id IN (
  SELECT id FROM jobs
  WHERE state = 'running' AND heartbeat_at < $1
    AND (NOT $3 OR run_id IS NULL)
    AND id NOT IN (SELECT value FROM json_each($4))
  ORDER BY heartbeat_at
  LIMIT $2 + 0)
RETURNING {job_columns};

-- name: JobGet
SELECT {job_columns} FROM jobs WHERE id = $1;

-- name: JobList
SELECT {job_columns}
FROM jobs
WHERE {fragment:job_filter}
ORDER BY id
LIMIT $7 + 0;

-- name: JobListByRun
-- JobList of one run's jobs, through the index jobs_run.
SELECT {job_columns}
FROM jobs
WHERE run_id = $4 AND {fragment:job_filter}
ORDER BY id
LIMIT $7 + 0;

-- name: JobCancel
UPDATE jobs
SET state = 'cancelled', finalized_at = $2, heartbeat_at = NULL
WHERE id = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')
RETURNING {job_columns};

-- name: JobRetry
-- A job out of attempts gets exactly one more; the attempt count is kept, so
-- the error history and backoff stay meaningful.
UPDATE jobs
SET state = 'available',
    scheduled_at = $2,
    finalized_at = NULL,
    max_attempts = max(max_attempts, attempt + 1)
WHERE id = $1 AND state NOT IN ('running', 'pending')
RETURNING {job_columns};

-- name: JobStats
SELECT queue, state, count(*),
       min(CASE WHEN state IN ('available', 'scheduled', 'retryable') THEN scheduled_at END)
FROM jobs
GROUP BY queue, state
ORDER BY queue, state;

-- fragment: job_filter
-- The JobList filter: $1 states (JSON array, NULL for any), $2 queue, $3
-- kind ('' for any), $4 run id (NULL for any), $5 ids (JSON array, NULL for
-- any), $6 the id to list after, $8 tags every job listed has (JSON array,
-- NULL for any).
($1 IS NULL OR state IN (SELECT value FROM json_each($1)))
  AND ($8 IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each($8) AS want
    WHERE want.value NOT IN (SELECT value FROM json_each(coalesce(jobs.tags, '[]')))))
  AND ($2 = '' OR queue = $2)
  AND ($3 = '' OR kind = $3)
  AND ($4 IS NULL OR run_id = $4)
  AND ($5 IS NULL OR id IN (SELECT value FROM json_each($5)))
  AND id > $6

-- fragment: unique_live
-- A job blocks others with its unique key while its state is in its mask
-- (the bits of states.go). Keep in step with the index jobs_unique_key of
-- migration 0001.
(unique_states & (CASE state WHEN 'available' THEN 1 WHEN 'scheduled' THEN 2 WHEN 'running' THEN 4 WHEN 'retryable' THEN 8 WHEN 'completed' THEN 16 WHEN 'cancelled' THEN 32 WHEN 'discarded' THEN 64 WHEN 'pending' THEN 128 ELSE 0 END)) <> 0

-- fragment: dependency_settled
-- Dependency d no longer holds back dependent jobs: it completed, or it
-- failed (cancelled, discarded) and jobs ignores failures.
(d.state = 'completed'
 OR (jobs.dependency_failure = 'ignore' AND d.state IN ('cancelled', 'discarded')))
