-- Periodic schedules (storage.PeriodicExecutor). {fragment:periodic_columns}
-- are the columns scanPeriodic reads, in its order.

-- fragment: periodic_columns
name, kind, spec, tz, policy, last_run_at, next_run_at, updated_at

-- name: PeriodicRegister
-- One statement for all schedules: concurrent registrations of one name
-- serialize on its row. A schedule whose spec or time zone changed starts
-- again at the given next run; otherwise the stored next run is kept, also
-- when it is long past (the pass then finds the periods missed meanwhile).
-- A row stored exactly as given is not written (no new row version).
INSERT INTO {schema}.periodic_schedules AS s (name, kind, spec, tz, policy, next_run_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
ON CONFLICT (name) DO UPDATE
SET kind = EXCLUDED.kind,
    spec = EXCLUDED.spec,
    tz = EXCLUDED.tz,
    policy = EXCLUDED.policy,
    next_run_at = CASE WHEN (s.spec, s.tz) IS DISTINCT FROM (EXCLUDED.spec, EXCLUDED.tz)
                       THEN EXCLUDED.next_run_at ELSE s.next_run_at END,
    updated_at = now()
WHERE (s.kind, s.spec, s.tz, s.policy) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.spec, EXCLUDED.tz, EXCLUDED.policy)
RETURNING {fragment:periodic_columns};

-- name: PeriodicList
SELECT {fragment:periodic_columns}
FROM {schema}.periodic_schedules
WHERE cardinality($1::text[]) = 0 OR name = ANY($1::text[])
ORDER BY name;

-- name: PeriodicDue
-- SKIP LOCKED: a row another node is enqueueing is left to it. A row locked
-- after that node committed is re-checked on its new version, whose next run
-- is no longer due, so it is not returned.
SELECT {fragment:periodic_columns}
FROM {schema}.periodic_schedules
WHERE name = ANY($1::text[]) AND next_run_at <= $2
ORDER BY next_run_at, name
LIMIT $3
FOR UPDATE SKIP LOCKED;

-- name: PeriodicAdvance
-- Guarded by the next run the caller read: of two nodes that both read the
-- same period (one without a lock), only the first moves it on.
WITH advanced AS (
  UPDATE {schema}.periodic_schedules
  SET next_run_at = $3,
      last_run_at = coalesce($4, last_run_at),
      updated_at = now()
  WHERE name = $1 AND next_run_at = $2
  RETURNING {fragment:periodic_columns}
)
SELECT {fragment:periodic_columns}, true FROM advanced
UNION ALL
SELECT {fragment:periodic_columns}, false FROM {schema}.periodic_schedules
WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM advanced);
