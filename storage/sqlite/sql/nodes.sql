-- Queries on the nodes and their leader (migration 0002). $now is the
-- store's clock (clock.go), passed in; durations are microseconds.

-- name: LeaderElect
-- Node ?1 takes the lead until ?3 if nobody leads or the lease ran out
-- (before ?2, now), or renews its own lease (keeping elected_at).
INSERT INTO leader AS l (one, node_id, elected_at, expires_at) VALUES (1, ?1, ?2, ?3)
ON CONFLICT (one) DO UPDATE
SET node_id = excluded.node_id,
    elected_at = CASE WHEN l.node_id = excluded.node_id THEN l.elected_at ELSE excluded.elected_at END,
    expires_at = excluded.expires_at
WHERE l.node_id = excluded.node_id OR l.expires_at <= ?2;

-- name: LeaderGet
SELECT node_id, elected_at, expires_at FROM leader;

-- name: LeaderResign
DELETE FROM leader WHERE node_id = ?1;

-- name: NodeRecord
INSERT INTO nodes AS n (id, hostname, pid, version, queues, started_at, heartbeat_at, expires_at)
VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, ?7), ?7, ?8)
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname,
    pid = excluded.pid,
    version = excluded.version,
    queues = excluded.queues,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at,
    expires_at = excluded.expires_at
RETURNING {node_columns};

-- name: NodeDelete
DELETE FROM nodes WHERE id = ?1;

-- name: NodeList
SELECT {node_columns} FROM nodes ORDER BY started_at, id;

-- name: NodePrune
-- Deletes up to ?2 rows of nodes whose lease ended before ?1, oldest first.
DELETE FROM nodes WHERE id IN (
  SELECT id FROM nodes WHERE expires_at < ?1 ORDER BY expires_at LIMIT ?2 + 0
);
