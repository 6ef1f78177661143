-- Queries on workflow runs and their step logs. {run_columns} are the columns
-- scanRun reads.

-- name: RunInsert
-- A new run's state (attrs) is $10, the initial state given at enqueue, or
-- JSON null when none was. Any unique conflict does nothing: with the key
-- (the run exists), and with the id too (two inserts of one run, same id and
-- key, racing: without a target the second waits for the first and then
-- does nothing, where ON CONFLICT on the key alone would fail on the primary
-- key).
INSERT INTO {schema}.runs (id, idempotency_key, workflow, args, queue, recovery_point,
                           definition_hash, parent_run_id, parent_step, attrs, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10::jsonb, 'null'::jsonb), $11)
ON CONFLICT DO NOTHING
RETURNING {run_columns};

-- name: RunGet
SELECT {run_columns} FROM {schema}.runs WHERE id = $1;

-- name: RunGetByKey
SELECT {run_columns} FROM {schema}.runs WHERE idempotency_key = $1;

-- name: RunList
SELECT {run_columns}
FROM {schema}.runs
WHERE ($1::text[] IS NULL OR state = ANY($1))
  AND ($2::text = '' OR workflow = $2)
  AND ($3::uuid IS NULL OR parent_run_id = $3)
  AND ($7::text = '' OR parent_step = $7)
  AND ($8::text[] IS NULL OR tags @> $8)
  AND (created_at, id) > ($4, $6)
ORDER BY created_at, id
LIMIT $5;

-- name: RunLease
-- The lease is free when nobody holds it, when the job attempt that holds
-- it has ended (it completed or failed, was cancelled, or was rescued after
-- its worker stopped heartbeating), or when an earlier attempt of the same
-- job holds it. A holder whose attempt still runs is never overtaken,
-- however long its step takes: its heartbeat keeps the attempt, and so the
-- lease, alive.
--
-- The end is taken on positive evidence only: the holder's job row at the
-- holder's attempt and no longer running, or at a later attempt (attempt
-- numbers only grow, and a claim sets the attempt and 'running' together).
-- The jobs row is read from this statement's snapshot, which may predate
-- the lease: when another worker's claim leased the run after the snapshot
-- was taken, the row recheck sees the new lease while the snapshot still
-- shows that job before its claim (a lower attempt) or not at all, and
-- neither counts as an end, so a live lease is never taken.
UPDATE {schema}.runs r
SET locked_by = $2,
    locked_at = now(),
    locked_job_id = $3,
    locked_attempt = $4,
    last_run_at = now(),
    state = 'running',
    updated_at = now()
WHERE r.id = $1
  AND r.state IN ('pending', 'running')
  AND (r.locked_by IS NULL
       OR (r.locked_job_id = $3 AND r.locked_attempt < $4)
       OR r.locked_job_id IS NULL
       OR EXISTS (
         SELECT 1 FROM {schema}.jobs j
         WHERE j.id = r.locked_job_id
           AND (j.attempt > r.locked_attempt OR (j.attempt = r.locked_attempt AND j.state <> 'running'))))
RETURNING {run_columns};

-- name: RunLock
-- Locks the run's row for the rest of the transaction.
SELECT {run_columns} FROM {schema}.runs WHERE id = $1 FOR UPDATE;

-- name: RunEnd
-- A job carrying the run ended for good ($2, of kind $5): a live run ends
-- with it ($3 state, $4 error), unless another job of the run's workflow is
-- unfinished and carries it on. Run after RunLock in the same transaction:
-- READ COMMITTED gives this statement a snapshot taken after the lock, so it
-- sees every carrying job that ended before the lock was granted.
UPDATE {schema}.runs r
SET {fragment:give_run_up}
WHERE r.id = $1
  AND r.state IN ('pending', 'running')
  AND r.workflow = $5
  AND NOT EXISTS (
    SELECT 1 FROM {schema}.jobs j
    WHERE j.run_id = r.id AND j.kind = r.workflow AND j.id <> $2
      AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable'))
RETURNING {run_columns};

-- name: RunSettle
-- Marks a finished run settled, once per finish: the transaction that does
-- it stages the run's OnFinish callback and counts it off its parent.
UPDATE {schema}.runs
SET settled_at = now(), updated_at = now()
WHERE id = $1 AND state IN ('succeeded', 'failed', 'cancelled') AND settled_at IS NULL
RETURNING {run_columns};

-- name: RunUpdate
-- One statement, so the fence and the step log are atomic even outside a
-- transaction: the step row is written only when the lease check passed.
-- When it does not pass, the statement raises (lease_lost, SQLSTATE AC001)
-- so that a COMMIT pipelined behind it rolls back.
WITH updated AS (
  UPDATE {schema}.runs
  SET state = $3,
      recovery_point = $4,
      attrs = $5,
      cursor = $6,
      awaiting = $7,
      locked_by = CASE WHEN $8 THEN NULL ELSE locked_by END,
      locked_at = CASE WHEN $8 THEN NULL ELSE now() END,
      locked_job_id = CASE WHEN $8 THEN NULL ELSE locked_job_id END,
      locked_attempt = CASE WHEN $8 THEN NULL ELSE locked_attempt END,
      error = nullif($9, ''),
      result = $10,
      updated_at = now(),
      finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN now() END,
      settled_at = CASE WHEN $18 THEN now() END
  WHERE id = $1 AND locked_by = $2
  RETURNING {run_columns}
),
step AS (
  INSERT INTO {schema}.run_steps (run_id, position, name, state, attempt, executions,
                                  result, error, started_at, finished_at)
  SELECT id, $11::integer, $12::text, $13::text, $14::integer, 1, $15::jsonb, nullif($16::text, ''), $17::timestamptz, now()
  FROM updated
  WHERE $12::text IS NOT NULL
  ON CONFLICT (run_id, position) DO UPDATE
  SET name = excluded.name,
      state = excluded.state,
      attempt = excluded.attempt,
      executions = run_steps.executions + 1,
      result = excluded.result,
      error = excluded.error,
      finished_at = excluded.finished_at
)
SELECT u.*
FROM (SELECT 1) AS one
LEFT JOIN updated AS u ON true
WHERE CASE WHEN u.id IS NOT NULL THEN true ELSE {schema}.lease_lost($1) END;

-- name: RunRelease
-- The lease holder gives the run up: sets its state and error, clears the
-- lease, and logs the step, without touching the recovery point, state or
-- cursor: those change only in a step's own transaction, so a failure
-- recorded after a commit whose outcome was lost cannot undo progress.
WITH updated AS (
  UPDATE {schema}.runs
  SET {fragment:give_run_up}
  WHERE id = $1 AND locked_by = $2
  RETURNING {run_columns}
),
step AS (
  INSERT INTO {schema}.run_steps (run_id, position, name, state, attempt, executions,
                                  result, error, started_at, finished_at)
  SELECT id, $5::integer, $6::text, $7::text, $8::integer, 1, NULL, nullif($9::text, ''), $10::timestamptz, now()
  FROM updated
  WHERE $6::text IS NOT NULL
  ON CONFLICT (run_id, position) DO UPDATE
  SET state = excluded.state,
      attempt = excluded.attempt,
      executions = run_steps.executions + 1,
      error = excluded.error,
      finished_at = excluded.finished_at
  WHERE run_steps.state <> 'succeeded'
)
SELECT * FROM updated;

-- name: RunSetState
UPDATE {schema}.runs
SET {fragment:give_run_up}
WHERE id = $1 AND state = ANY($2::text[])
RETURNING {run_columns};

-- name: RunSteps
SELECT run_id, position, name, state, attempt, executions, result, coalesce(error, ''),
       started_at, finished_at
FROM {schema}.run_steps
WHERE run_id = $1
ORDER BY position;

-- name: RunChildFinished
-- A child run finished: count it off its awaiting parent, once in the
-- child's life (counted_at; a retried child that finishes again is not
-- counted twice). The child whose decrement reaches zero sees the parent
-- pending again, marks the parent's await step done in the step log, and
-- (in Go) enqueues the continuation in the same transaction.
WITH child AS (
  UPDATE {schema}.runs
  SET counted_at = now()
  WHERE id = $1 AND parent_run_id IS NOT NULL AND counted_at IS NULL
  RETURNING parent_run_id, parent_step
),
parent AS (
  UPDATE {schema}.runs r
  SET awaiting = r.awaiting - 1,
      state = CASE WHEN r.awaiting = 1 THEN 'pending' ELSE r.state END,
      updated_at = now()
  FROM child
  WHERE r.id = child.parent_run_id AND r.state = 'awaiting' AND r.awaiting > 0
  RETURNING {run_columns_r}
),
step AS (
  UPDATE {schema}.run_steps s
  SET state = 'succeeded', finished_at = now()
  FROM parent, child
  WHERE parent.state = 'pending' AND s.run_id = parent.id AND s.name = child.parent_step AND s.state = 'awaiting'
)
SELECT * FROM parent;

-- fragment: give_run_up
-- The SET list that gives a run up: state $3, error $4 (empty for none),
-- lease cleared, finished_at set when the state is final, not settled (the
-- obligations of a finish are met by RunSettle).
state = $3,
error = nullif($4, ''),
locked_by = NULL,
locked_at = NULL,
locked_job_id = NULL,
locked_attempt = NULL,
updated_at = now(),
finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN now() END,
settled_at = NULL
