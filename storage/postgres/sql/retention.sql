-- Retention: pruning finished jobs and runs a batch at a time, and deleting
-- one run on purpose. Each prune is one statement: it finds its candidates
-- with index probes, locks them with SKIP LOCKED (re-checking on the newest
-- row version that they still qualify) and deletes them, so it never waits
-- for a worker and holds its locks only for the statement.

-- name: JobPruneByState
-- $1 final states, $2 how long each is kept (microseconds), $3 queues kept
-- for ever, $4 the batch size. A skip scan over jobs_final (state, queue,
-- finalized_at): for each state, the next queue is one index probe, and each
-- queue not kept is read oldest first up to the state's cutoff, so jobs of
-- kept queues are never read. Kept: a cancelled or discarded job that a
-- pending job depends on (its dependents are not resolved yet: a missing
-- dependency counts as done, which only a completed one is), found through
-- the GIN index jobs_pending_deps; and a job whose attempt still holds its
-- run's lease (RunLease takes a lease over only on evidence from the
-- holder's job row).
WITH RECURSIVE retention AS (
  SELECT state, now() - keep_us * interval '1 microsecond' AS cutoff
  FROM unnest($1::text[], $2::bigint[]) AS t(state, keep_us)
),
queues AS (
  SELECT t.state,
         (SELECT j.queue FROM {schema}.jobs j
          WHERE j.state = t.state AND j.finalized_at IS NOT NULL
          ORDER BY j.queue LIMIT 1) AS queue
  FROM retention t
  UNION ALL
  SELECT q.state,
         (SELECT j.queue FROM {schema}.jobs j
          WHERE j.state = q.state AND j.finalized_at IS NOT NULL AND j.queue > q.queue
          ORDER BY j.queue LIMIT 1)
  FROM queues q
  WHERE q.queue IS NOT NULL
),
candidates AS (
  SELECT c.id
  FROM queues q
  JOIN retention t ON t.state = q.state
  CROSS JOIN LATERAL (
    SELECT j.id
    FROM {schema}.jobs j
    WHERE j.state = q.state AND j.queue = q.queue
      AND j.finalized_at IS NOT NULL AND j.finalized_at < t.cutoff
      AND (j.state = 'completed' OR NOT EXISTS (
        SELECT 1 FROM {schema}.jobs d
        WHERE d.state = 'pending' AND d.depends_on @> ARRAY[j.id]))
      AND NOT EXISTS (
        SELECT 1 FROM {schema}.runs r
        WHERE r.id = j.run_id AND r.locked_job_id = j.id)
    ORDER BY j.finalized_at
    LIMIT $4
  ) c
  WHERE q.queue IS NOT NULL AND NOT (q.queue = ANY($3::text[]))
  LIMIT $4
),
doomed AS (
  SELECT j.id AS doomed_id
  FROM {schema}.jobs j
  JOIN retention t ON t.state = j.state
  WHERE j.id = ANY(ARRAY(SELECT id FROM candidates)) AND j.finalized_at < t.cutoff
  FOR UPDATE OF j SKIP LOCKED
)
DELETE FROM {schema}.jobs USING doomed WHERE id = doomed_id;

-- name: RunPrune
-- $1 final states, $2 how long each is kept (microseconds), $3 workflows
-- kept for ever, $4 queues whose finished jobs outlive their run (detached
-- by the foreign key's SET NULL instead of deleted), $5 the batch size.
--
-- A skip scan over runs_workflow_created (workflow, created_at): the next
-- workflow is one index probe, kept workflows are never read, and each other
-- workflow is read oldest first up to the newest cutoff (a run finished
-- before a cutoff was created before it). There is no index on a run's
-- state or finish time (updates that change those stay HOT), so the runs
-- older than the newest cutoff that must stay (a state kept longer, a child
-- whose parent is kept, a run still running) are read again by every prune.
--
-- A run is deleted only when it has finished and settled (its OnFinish
-- callback staged, its parent counted off), no job of it is unfinished (its
-- OnFinish callback has run), no child of it is unfinished or unsettled, and
-- it has no parent: a parent may read its children's results in any later
-- step, also after a retry, so a child goes only once its parent has gone
-- (the foreign key then cleared its parent_run_id). Deleting the runs
-- deletes their step logs (trigger runs_delete_steps) and detaches their
-- children (SET NULL).
WITH RECURSIVE retention AS (
  SELECT state, now() - keep_us * interval '1 microsecond' AS cutoff
  FROM unnest($1::text[], $2::bigint[]) AS t(state, keep_us)
),
newest AS (
  SELECT max(cutoff) AS cutoff FROM retention
),
workflows AS (
  (SELECT workflow FROM {schema}.runs ORDER BY workflow LIMIT 1)
  UNION ALL
  SELECT (SELECT r.workflow FROM {schema}.runs r WHERE r.workflow > w.workflow ORDER BY r.workflow LIMIT 1)
  FROM workflows w
  WHERE w.workflow IS NOT NULL
),
candidates AS (
  SELECT c.id
  FROM workflows w
  CROSS JOIN newest n
  CROSS JOIN LATERAL (
    SELECT r.id
    FROM {schema}.runs r
    JOIN retention t ON t.state = r.state
    WHERE r.workflow = w.workflow
      AND r.created_at < n.cutoff
      AND r.finished_at < t.cutoff
      AND r.settled_at IS NOT NULL
      AND r.parent_run_id IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM {schema}.jobs j
        WHERE j.run_id = r.id AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable'))
      AND NOT EXISTS (
        SELECT 1 FROM {schema}.runs c
        WHERE c.parent_run_id = r.id AND c.settled_at IS NULL)
    ORDER BY r.created_at
    LIMIT $5
  ) c
  WHERE w.workflow IS NOT NULL AND NOT (w.workflow = ANY($3::text[]))
  LIMIT $5
),
doomed AS (
  SELECT r.id AS doomed_id
  FROM {schema}.runs r
  JOIN retention t ON t.state = r.state
  WHERE r.id = ANY(ARRAY(SELECT id FROM candidates))
    AND r.finished_at < t.cutoff AND r.settled_at IS NOT NULL AND r.parent_run_id IS NULL
  FOR UPDATE OF r SKIP LOCKED
),
jobs_gone AS (
  DELETE FROM {schema}.jobs j
  USING doomed
  WHERE j.run_id = doomed_id
    AND j.state IN ('completed', 'cancelled', 'discarded')
    AND NOT (j.queue = ANY($4::text[]))
    AND (j.state = 'completed' OR NOT EXISTS (
      SELECT 1 FROM {schema}.jobs d
      WHERE d.state = 'pending' AND d.depends_on @> ARRAY[j.id]))
),
gone AS (
  DELETE FROM {schema}.runs USING doomed WHERE id = doomed_id RETURNING id
)
SELECT count(*) FROM gone;

-- name: RunDelete
-- Run after RunLock in the same transaction, so that this statement's
-- snapshot, taken after the lock was granted, sees whatever the run's last
-- writer committed with it (the OnFinish job staged with its settling, say).
-- $1 the run, $2 a job of it that may be unfinished (the OnFinish callback
-- asking for the deletion; 0 for none), $3 queues whose finished jobs
-- outlive the run. Returns one row when the run exists: why it cannot be
-- deleted (NULL when it was), and the run as it was when deleted.
WITH target AS (
  SELECT id, state, settled_at, parent_run_id FROM {schema}.runs WHERE id = $1
),
blocker AS (
  SELECT t.id, coalesce(
    CASE WHEN t.state NOT IN ('succeeded', 'failed', 'cancelled') THEN 'it is ' || t.state END,
    CASE WHEN t.settled_at IS NULL THEN 'its finish is not settled yet (its OnFinish callback or its parent''s count-off is owed)' END,
    (SELECT 'its job ' || j.id || ' (' || j.kind || ') is ' || j.state
     FROM {schema}.jobs j
     WHERE j.run_id = t.id AND j.id <> $2
       AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable')
     ORDER BY j.id LIMIT 1),
    (SELECT 'its child run ' || c.id || ' is ' || c.state || CASE WHEN c.state IN ('succeeded', 'failed', 'cancelled') THEN ' and not settled yet' ELSE '' END
     FROM {schema}.runs c
     WHERE c.parent_run_id = t.id AND c.settled_at IS NULL
     ORDER BY c.created_at, c.id LIMIT 1),
    (SELECT 'its parent run ' || p.id || ' is ' || p.state || ' and may still read it'
     FROM {schema}.runs p
     WHERE p.id = t.parent_run_id AND p.settled_at IS NULL)
  ) AS reason
  FROM target t
),
jobs_gone AS (
  DELETE FROM {schema}.jobs j
  USING blocker b
  WHERE b.reason IS NULL AND j.run_id = b.id AND j.id <> $2
    AND j.state IN ('completed', 'cancelled', 'discarded')
    AND NOT (j.queue = ANY($3::text[]))
    AND (j.state = 'completed' OR NOT EXISTS (
      SELECT 1 FROM {schema}.jobs d
      WHERE d.state = 'pending' AND d.depends_on @> ARRAY[j.id]))
),
gone AS (
  DELETE FROM {schema}.runs r
  USING blocker b
  WHERE b.reason IS NULL AND r.id = b.id
  RETURNING {run_columns_r}
)
SELECT b.reason, gone.*
FROM blocker b
LEFT JOIN gone ON true;
