-- Periodic schedules (storage.PeriodicExecutor), migration 0002. The
-- columns are scanPeriodic's, in its order.

-- name: PeriodicRegister
-- ?7 is now. A schedule whose spec or time zone changed starts again at the
-- given next run; a row stored exactly as given is not written, and no row
-- comes back.
INSERT INTO periodic_schedules AS s (name, kind, spec, tz, policy, next_run_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (name) DO UPDATE
SET kind = excluded.kind,
    spec = excluded.spec,
    tz = excluded.tz,
    policy = excluded.policy,
    next_run_at = CASE WHEN s.spec IS NOT excluded.spec OR s.tz IS NOT excluded.tz
                       THEN excluded.next_run_at ELSE s.next_run_at END,
    updated_at = excluded.updated_at
WHERE s.kind IS NOT excluded.kind OR s.spec IS NOT excluded.spec OR s.tz IS NOT excluded.tz OR s.policy IS NOT excluded.policy
RETURNING {periodic_columns};

-- name: PeriodicList
SELECT {periodic_columns}
FROM periodic_schedules
WHERE ?1 IS NULL OR name IN (SELECT value FROM json_each(?1))
ORDER BY name;

-- name: PeriodicDue
-- The single writer holds every row the transaction read until it ends.
SELECT {periodic_columns}
FROM periodic_schedules
WHERE name IN (SELECT value FROM json_each(?1)) AND next_run_at <= ?2
ORDER BY next_run_at, name
LIMIT ?3 + 0;

-- name: PeriodicAdvance
UPDATE periodic_schedules
SET next_run_at = ?3,
    last_run_at = coalesce(?4, last_run_at),
    updated_at = ?5
WHERE name = ?1 AND next_run_at = ?2;

-- name: PeriodicGet
SELECT {periodic_columns} FROM periodic_schedules WHERE name = ?1;
