-- Queries on workflow runs and their step logs. {run_columns} are the columns
-- runRow.dest reads. Run ids are 16-byte blobs; times microseconds since the
-- Unix epoch, passed in by the driver.

-- name: RunInsert
-- A new run's state (attrs) is $11, or JSON null when NULL. The driver
-- looked the key and the id up first, in the same write transaction.
INSERT INTO runs (id, idempotency_key, workflow, args, queue, recovery_point,
                  definition_hash, parent_run_id, parent_step, created_at, updated_at, attrs, tags)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, coalesce($11, 'null'), $12)
RETURNING {run_columns};

-- name: RunGet
SELECT {run_columns} FROM runs WHERE id = $1;

-- name: RunGetByKey
SELECT {run_columns} FROM runs WHERE idempotency_key = $1;

-- name: RunList
SELECT {run_columns}
FROM runs
WHERE {fragment:run_filter}
ORDER BY created_at, id
LIMIT $5 + 0;

-- name: RunListByParent
-- RunList of one run's children, through the index runs_parent.
SELECT {run_columns}
FROM runs
WHERE parent_run_id = $3 AND {fragment:run_filter}
ORDER BY created_at, id
LIMIT $5 + 0;

-- name: RunListByWorkflow
-- RunList of one workflow's runs, through the index runs_workflow_created.
SELECT {run_columns}
FROM runs
WHERE workflow = $2 AND {fragment:run_filter}
ORDER BY created_at, id
LIMIT $5 + 0;

-- name: RunLease
-- The lease is free when nobody holds it, when the job attempt that holds
-- it has ended (it completed or failed, was cancelled, or was rescued after
-- its worker stopped heartbeating), or when an earlier attempt of the same
-- job holds it. A holder whose attempt still runs is never overtaken,
-- however long its step takes: its heartbeat keeps the attempt, and so the
-- lease, alive. The end is taken on positive evidence only: the holder's
-- job row at the holder's attempt and no longer running, or at a later
-- attempt.
UPDATE runs
SET locked_by = $2,
    locked_at = $5,
    locked_job_id = $3,
    locked_attempt = $4,
    last_run_at = $5,
    state = 'running',
    updated_at = $5
WHERE id = $1
  AND state IN ('pending', 'running')
  AND (locked_by IS NULL
       OR (locked_job_id = $3 AND locked_attempt < $4)
       OR locked_job_id IS NULL
       OR EXISTS (
         SELECT 1 FROM jobs j
         WHERE j.id = runs.locked_job_id
           AND (j.attempt > runs.locked_attempt OR (j.attempt = runs.locked_attempt AND j.state <> 'running'))))
RETURNING {run_columns};

-- name: RunEnd
-- A job carrying the run ended for good ($2, of kind $5): a live run ends
-- with it ($3 state, $4 error), unless another job of the run's workflow is
-- unfinished and carries it on.
UPDATE runs
SET {fragment:give_run_up}
WHERE id = $1
  AND state IN ('pending', 'running')
  AND workflow = $5
  AND NOT EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.run_id = runs.id AND j.kind = runs.workflow AND j.id <> $2
      AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable'))
RETURNING {run_columns};

-- name: RunSettle
-- Marks a finished run settled, once per finish.
UPDATE runs
SET settled_at = $2, updated_at = $2
WHERE id = $1 AND state IN ('succeeded', 'failed', 'cancelled') AND settled_at IS NULL
RETURNING {run_columns};

-- name: RunUpdate
-- The lease holder's write of the run's progress; no row when token $2 does
-- not hold the lease (the driver then writes nothing else).
UPDATE runs
SET state = $3,
    recovery_point = $4,
    attrs = $5,
    cursor = $6,
    awaiting = $7,
    locked_by = CASE WHEN $8 THEN NULL ELSE locked_by END,
    locked_at = CASE WHEN $8 THEN NULL ELSE $11 END,
    locked_job_id = CASE WHEN $8 THEN NULL ELSE locked_job_id END,
    locked_attempt = CASE WHEN $8 THEN NULL ELSE locked_attempt END,
    error = nullif($9, ''),
    result = $10,
    updated_at = $11,
    finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN $11 END,
    settled_at = CASE WHEN $12 THEN $11 END
WHERE id = $1 AND locked_by = $2
RETURNING {run_columns};

-- name: StepLog
-- A step's entry in the log, written with the run's progress: a position
-- written again counts another execution and keeps the latest write.
INSERT INTO run_steps (run_id, position, name, state, attempt, executions,
                       result, error, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, 1, $6, nullif($7, ''), $8, $9)
ON CONFLICT (run_id, position) DO UPDATE
SET name = excluded.name,
    state = excluded.state,
    attempt = excluded.attempt,
    executions = run_steps.executions + 1,
    result = excluded.result,
    error = excluded.error,
    finished_at = excluded.finished_at;

-- name: StepLogFailure
-- A step's failure, logged by RunRelease: it never overwrites a step that
-- succeeded (its commit's answer may have been lost).
INSERT INTO run_steps (run_id, position, name, state, attempt, executions,
                       result, error, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, 1, NULL, nullif($6, ''), $7, $8)
ON CONFLICT (run_id, position) DO UPDATE
SET state = excluded.state,
    attempt = excluded.attempt,
    executions = run_steps.executions + 1,
    error = excluded.error,
    finished_at = excluded.finished_at
WHERE run_steps.state <> 'succeeded';

-- name: RunRelease
-- The lease holder gives the run up: sets its state and error, clears the
-- lease, without touching the recovery point, state or cursor.
UPDATE runs
SET {fragment:give_run_up}
WHERE id = $1 AND locked_by = $2
RETURNING {run_columns};

-- name: RunSetState
-- $2 is a JSON array of the states the run may be in.
UPDATE runs
SET {fragment:give_run_up}
WHERE id = $1 AND state IN (SELECT value FROM json_each($2))
RETURNING {run_columns};

-- name: RunSteps
SELECT run_id, position, name, state, attempt, executions, result, coalesce(error, ''),
       started_at, finished_at
FROM run_steps
WHERE run_id = $1
ORDER BY position;

-- name: RunCountChild
-- Counts child $1 off its parent, once in the child's life.
UPDATE runs
SET counted_at = $2
WHERE id = $1 AND parent_run_id IS NOT NULL AND counted_at IS NULL
RETURNING parent_run_id, coalesce(parent_step, '');

-- name: RunCountOffParent
-- The awaiting parent $1 loses a child; the last one makes it pending.
UPDATE runs
SET awaiting = awaiting - 1,
    state = CASE WHEN awaiting = 1 THEN 'pending' ELSE state END,
    updated_at = $2
WHERE id = $1 AND state = 'awaiting' AND awaiting > 0
RETURNING {run_columns};

-- name: RunAwaitDone
-- The resumed parent's await step (named $2) succeeded.
UPDATE run_steps
SET state = 'succeeded', finished_at = $3
WHERE run_id = $1 AND name = $2 AND state = 'awaiting';

-- fragment: run_filter
-- The RunList filter: $1 states (JSON array, NULL for any), $2 workflow,
-- $7 parent step ('' for any), $3 parent run (NULL for any), and the run to
-- list after ($4 created_at, $6 id), $8 tags every run listed has (JSON
-- array, NULL for any).
($1 IS NULL OR state IN (SELECT value FROM json_each($1)))
  AND ($8 IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each($8) AS want
    WHERE want.value NOT IN (SELECT value FROM json_each(coalesce(runs.tags, '[]')))))
  AND ($2 = '' OR workflow = $2)
  AND ($3 IS NULL OR parent_run_id = $3)
  AND ($7 = '' OR parent_step = $7)
  AND (created_at, id) > ($4, $6)

-- fragment: give_run_up
-- The SET list that gives a run up: state $3, error $4 (empty for none),
-- lease cleared, finished_at set ($6, now) when the state is final, not
-- settled (the obligations of a finish are met by RunSettle).
state = $3,
error = nullif($4, ''),
locked_by = NULL,
locked_at = NULL,
locked_job_id = NULL,
locked_attempt = NULL,
updated_at = $6,
finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'cancelled') THEN $6 END,
settled_at = NULL
