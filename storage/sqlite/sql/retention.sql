-- Retention (storage.Retention): pruning finished jobs and runs a batch at a
-- time, and deleting one run on purpose. The single writer holds the store
-- while a prune runs, so no row is skipped for a lock.

-- fragment: job_not_needed
-- Job j may go: a cancelled or discarded job no pending job depends on (a
-- missing dependency counts as completed, which only a completed one is).
(j.state = 'completed' OR NOT EXISTS (
   SELECT 1 FROM job_deps x JOIN jobs d ON d.id = x.job_id
   WHERE x.dep_id = j.id AND d.state = 'pending'))

-- name: JobPruneByState
-- Deletes up to ?4 jobs in state ?1 finalized before ?2, except jobs of the
-- queues in ?3 (a JSON array) and jobs whose attempt still holds its run's
-- lease.
DELETE FROM jobs WHERE id IN (
  SELECT j.id FROM jobs j
  WHERE j.state = ?1 AND j.finalized_at IS NOT NULL AND j.finalized_at < ?2
    AND j.queue NOT IN (SELECT value FROM json_each(?3))
    AND {fragment:job_not_needed}
    AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = j.run_id AND r.locked_job_id = j.id)
  ORDER BY j.finalized_at
  LIMIT ?4 + 0
);

-- name: RunPruneCandidates
-- Up to ?4 runs in state ?1 finished before ?2, not of the workflows in ?3,
-- settled, without a parent, an unfinished job or an unsettled child.
SELECT r.id FROM runs r
WHERE r.state = ?1 AND r.finished_at < ?2
  AND r.settled_at IS NOT NULL
  AND r.parent_run_id IS NULL
  AND r.workflow NOT IN (SELECT value FROM json_each(?3))
  AND NOT EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.run_id = r.id AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable'))
  AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = r.id AND c.settled_at IS NULL)
ORDER BY r.created_at
LIMIT ?4 + 0;

-- name: RunDeleteJobs
-- Deletes the finished jobs of run ?1 but job ?2, except those of the queues
-- in ?3 (they stay, detached by the foreign key).
DELETE FROM jobs WHERE id IN (
  SELECT j.id FROM jobs j
  WHERE j.run_id = ?1 AND j.id <> ?2
    AND j.state IN ('completed', 'cancelled', 'discarded')
    AND j.queue NOT IN (SELECT value FROM json_each(?3))
    AND {fragment:job_not_needed}
);

-- name: RunDeleteRow
-- Deletes run ?1: its step log goes with it (foreign key), its children and
-- remaining jobs are detached (SET NULL), its awaited jobs go (trigger).
DELETE FROM runs WHERE id = ?1;

-- name: RunDeleteBlockingJob
SELECT j.id, j.kind, j.state FROM jobs j
WHERE j.run_id = ?1 AND j.id <> ?2
  AND j.state IN ('pending', 'available', 'scheduled', 'running', 'retryable')
ORDER BY j.id LIMIT 1;

-- name: RunDeleteBlockingChild
SELECT c.id, c.state FROM runs c
WHERE c.parent_run_id = ?1 AND c.settled_at IS NULL
ORDER BY c.created_at, c.id LIMIT 1;

-- name: RunDeleteBlockingParent
SELECT p.id, p.state FROM runs p
WHERE p.id = ?1 AND p.settled_at IS NULL;
