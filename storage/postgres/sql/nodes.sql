-- Queries on the nodes and their leader (migration 0010). Every time is the
-- database's clock. Durations travel as microseconds.

-- name: LeaderElect
-- Node $1 takes the lead for $2 microseconds if nobody leads or the lease
-- ran out, or renews its own lease (keeping elected_at); another node's
-- running lease is left alone. Returns the leader after the attempt and the
-- microseconds left on its lease. The fallback read sees the statement's
-- snapshot: a leader inserted by a transaction that committed during the
-- statement is not in it, and no row comes back (the caller tries again).
WITH elected AS (
  INSERT INTO {schema}.leader AS l (node_id, elected_at, expires_at)
  VALUES ($1, now(), now() + $2::bigint * interval '1 microsecond')
  ON CONFLICT (one) DO UPDATE
  SET node_id = excluded.node_id,
      elected_at = CASE WHEN l.node_id = excluded.node_id THEN l.elected_at ELSE excluded.elected_at END,
      expires_at = excluded.expires_at
  WHERE l.node_id = excluded.node_id OR l.expires_at <= now()
  RETURNING node_id, elected_at, expires_at
),
holder AS (
  SELECT node_id, elected_at, expires_at FROM elected
  UNION ALL
  SELECT node_id, elected_at, expires_at FROM {schema}.leader WHERE NOT EXISTS (SELECT FROM elected)
)
SELECT node_id, elected_at, expires_at, {fragment:micros_left} FROM holder;

-- name: LeaderResign
-- Deletes node $1's lead and, only then, wakes the other nodes on channel $2.
WITH resigned AS (
  DELETE FROM {schema}.leader WHERE node_id = $1 RETURNING node_id
)
SELECT count(pg_notify($2, '')) FROM resigned;

-- name: LeaderGet
SELECT node_id, elected_at, expires_at, {fragment:micros_left} FROM {schema}.leader;

-- name: NodeRecord
-- Writes node $1's row whole: $6 is its first record's started_at, NULL on
-- that first record; $7 the microseconds it stays live without another.
INSERT INTO {schema}.nodes AS n (id, hostname, pid, version, queues, started_at, heartbeat_at, expires_at)
VALUES ($1, $2, $3, $4, $5::jsonb, coalesce($6, now()), now(), now() + $7::bigint * interval '1 microsecond')
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname,
    pid = excluded.pid,
    version = excluded.version,
    queues = excluded.queues,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at,
    expires_at = excluded.expires_at
RETURNING {fragment:node_columns};

-- name: NodeDelete
DELETE FROM {schema}.nodes WHERE id = $1;

-- name: NodeList
SELECT {fragment:node_columns} FROM {schema}.nodes ORDER BY started_at, id;

-- name: NodePrune
-- Deletes up to $1 rows of nodes that stopped heartbeating, oldest first.
WITH dead AS (
  SELECT id AS dead_id
  FROM {schema}.nodes
  WHERE expires_at < now()
  ORDER BY expires_at
  LIMIT $1
  FOR UPDATE SKIP LOCKED
)
DELETE FROM {schema}.nodes USING dead WHERE id = dead_id;

-- fragment: micros_left
-- The microseconds from now until the column expires_at (negative once it
-- passed).
(extract(epoch FROM expires_at - now()) * 1000000)::bigint

-- fragment: node_columns
-- A node's row, in scanNode's order (the last column as micros_left).
id, hostname, pid, version, queues, started_at, heartbeat_at, expires_at,
(extract(epoch FROM expires_at - now()) * 1000000)::bigint
