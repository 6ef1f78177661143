-- Queries that keep jobs and job graphs unique beside JobInsertUnique (see
-- storage.Uniqueness), migration 0002.

-- name: JobUniqueRelease
-- The jobs holding unique key ?1 inserted at or before ?2 give it up.
UPDATE jobs
SET unique_key = NULL
WHERE unique_key = ?1 AND created_at <= ?2;

-- name: JobGraphReserve
-- Takes key ?1 for a graph; no row when another graph holds it.
INSERT INTO job_graphs (key, created_at) VALUES (?1, ?2)
ON CONFLICT (key) DO NOTHING
RETURNING key;

-- name: JobGraphGet
SELECT names, job_ids FROM job_graphs WHERE key = ?1;

-- name: JobGraphRecord
UPDATE job_graphs SET names = ?2, job_ids = ?3 WHERE key = ?1;

-- name: JobGraphPrune
-- Graphs reserved before ?1 none of whose jobs is stored, up to ?2.
DELETE FROM job_graphs WHERE key IN (
  SELECT key FROM job_graphs g
  WHERE created_at < ?1
    AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id IN (SELECT value FROM json_each(g.job_ids)))
  ORDER BY created_at
  LIMIT ?2 + 0
);
