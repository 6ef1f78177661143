-- Outbox queries. {outbox_columns} are the columns scanOutbox reads.

-- name: OutboxInsert
WITH inserted AS (
  INSERT INTO {schema}.outbox (topic, key, payload, run_id)
  SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::uuid[])
  RETURNING id
)
SELECT count(*), pg_notify($5, '') FROM inserted;

-- name: OutboxClaim
-- The head of a key is its oldest undelivered message; only heads that are
-- due are claimed, so a key's later messages wait until its head is
-- delivered. A claim pushes next_attempt_at forward (the lease): another
-- relay skips the row until the lease expires.
WITH heads AS (
  SELECT DISTINCT ON (key) id AS head_id, next_attempt_at AS head_due
  FROM {schema}.outbox
  WHERE delivered_at IS NULL
  ORDER BY key, id
),
claimed AS (
  SELECT o.id AS claim_id
  FROM {schema}.outbox o
  JOIN heads ON o.id = heads.head_id
  WHERE heads.head_due <= now()
  ORDER BY o.id
  LIMIT $1
  FOR UPDATE OF o SKIP LOCKED
)
UPDATE {schema}.outbox
SET attempts = attempts + 1,
    next_attempt_at = now() + $2::bigint * interval '1 microsecond'
FROM claimed
-- Re-checked on the newest row version: a relay whose snapshot predates
-- another relay's claim does not claim the same head again.
WHERE id = claim_id AND delivered_at IS NULL AND next_attempt_at <= now()
RETURNING {outbox_columns};

-- name: OutboxDelivered
UPDATE {schema}.outbox SET delivered_at = now(), last_error = NULL
WHERE id = ANY($1::bigint[]) AND delivered_at IS NULL;

-- name: OutboxFailed
UPDATE {schema}.outbox SET next_attempt_at = $2, last_error = $3
WHERE id = $1 AND delivered_at IS NULL;

-- name: OutboxPrune
WITH doomed AS (
  SELECT id AS doomed_id FROM {schema}.outbox
  WHERE delivered_at < now() - $1::bigint * interval '1 microsecond'
  ORDER BY delivered_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.outbox USING doomed WHERE id = doomed_id;

-- name: OutboxList
SELECT {outbox_columns}
FROM {schema}.outbox
WHERE NOT $1 OR delivered_at IS NULL
ORDER BY id
LIMIT $2;
