-- Outbox queries. {outbox_columns} are the columns scanOutbox reads.

-- name: OutboxInsert
INSERT INTO outbox (topic, key, payload, run_id, next_attempt_at, created_at, meta)
VALUES ($1, $2, coalesce($3, 'null'), $4, $5, $5, $6);

-- name: OutboxClaim
-- The head of a key is its oldest undelivered message; only heads that are
-- due ($2) are claimed, at most $1, so a key's later messages wait until its
-- head is delivered. A claim pushes next_attempt_at to $3 (the lease). The
-- heads are found key by key through the partial index outbox_undelivered
-- (key, id): one probe per key instead of reading every undelivered row.
WITH RECURSIVE keys(k) AS (
  SELECT min(key) FROM outbox WHERE delivered_at IS NULL
  UNION ALL
  SELECT (SELECT min(key) FROM outbox WHERE delivered_at IS NULL AND key > keys.k)
  FROM keys WHERE keys.k IS NOT NULL
),
heads(head_id) AS (
  SELECT (SELECT min(id) FROM outbox WHERE delivered_at IS NULL AND key = keys.k)
  FROM keys WHERE keys.k IS NOT NULL
)
UPDATE outbox
SET attempts = attempts + 1,
    next_attempt_at = $3
WHERE id IN (
  SELECT o.id FROM outbox o JOIN heads ON o.id = heads.head_id
  WHERE o.next_attempt_at <= $2
  ORDER BY o.id
  LIMIT $1 + 0)
RETURNING {outbox_columns};

-- name: OutboxDelivered
UPDATE outbox SET delivered_at = $2, last_error = NULL
WHERE id IN (SELECT value FROM json_each($1)) AND delivered_at IS NULL;

-- name: OutboxRelease
-- $1 is [[id, attempt], ...]: each claim still current is due again now
-- ($2) and its attempt is not counted.
UPDATE outbox
SET next_attempt_at = $2, attempts = outbox.attempts - 1
FROM (SELECT value ->> 0 AS release_id, value ->> 1 AS release_attempt FROM json_each($1)) AS r
WHERE outbox.id = r.release_id AND outbox.attempts = r.release_attempt AND outbox.delivered_at IS NULL;

-- name: OutboxFailed
UPDATE outbox
SET next_attempt_at = $3, last_error = $4
WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL;

-- name: OutboxPrune
DELETE FROM outbox
WHERE id IN (SELECT id FROM outbox WHERE delivered_at < $1 ORDER BY delivered_at LIMIT $2 + 0);

-- name: OutboxList
SELECT {outbox_columns}
FROM outbox
WHERE NOT $1 OR delivered_at IS NULL
ORDER BY id
LIMIT $2 + 0;
