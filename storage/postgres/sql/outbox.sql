-- Outbox queries. {outbox_columns} are the columns collectOutbox reads.

-- name: OutboxInsert
WITH inserted AS (
  INSERT INTO {schema}.outbox (topic, key, payload, run_id, meta)
  SELECT topic, key, coalesce(payload, 'null'::jsonb), run_id, meta
  FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::uuid[], $6::jsonb[]) AS m(topic, key, payload, run_id, meta)
  RETURNING id
)
SELECT count(*), pg_notify($5, '') FROM inserted;

-- name: OutboxClaim
-- The head of a key is its oldest undelivered message; only heads that are
-- due are claimed, so a key's later messages wait until its head is
-- delivered. A claim pushes next_attempt_at forward (the lease): another
-- relay skips the row until the lease expires.
WITH RECURSIVE heads AS (
  -- A skip scan over outbox_undelivered (key, id): one index probe per key
  -- instead of reading every undelivered row.
  (SELECT key AS head_key, id AS head_id, next_attempt_at AS head_due
   FROM {schema}.outbox
   WHERE delivered_at IS NULL
   ORDER BY key, id
   LIMIT 1)
  UNION ALL
  SELECT n.key, n.id, n.next_attempt_at
  FROM heads h
  CROSS JOIN LATERAL (
    SELECT key, id, next_attempt_at
    FROM {schema}.outbox
    WHERE delivered_at IS NULL AND key > h.head_key
    ORDER BY key, id
    LIMIT 1
  ) n
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

-- name: OutboxRelease
UPDATE {schema}.outbox o
SET next_attempt_at = now(), attempts = o.attempts - 1
FROM unnest($1::bigint[], $2::integer[]) AS r(release_id, release_attempt)
WHERE o.id = r.release_id AND o.attempts = r.release_attempt AND o.delivered_at IS NULL;

-- name: OutboxFailed
UPDATE {schema}.outbox
SET next_attempt_at = now() + $3::bigint * interval '1 microsecond', last_error = $4
WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL;

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
