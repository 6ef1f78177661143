-- Nodes and their leader (docs/operations.md, "Leader" and "Nodes").
--
-- leader: at most one row, naming the node that runs the schema's
-- maintenance until expires_at. Every time is the database's clock: a node
-- takes the lead when the row is missing or its lease has run out, renews
-- its own lease well before it runs out, and deletes the row when it stops
-- cleanly, so that another node takes over at once. A lease row, not an
-- advisory lock, so that the rule needs no session held open and can be
-- written the same way on SQLite.
CREATE TABLE {schema}.leader (
  -- At most one row.
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  node_id text NOT NULL,
  elected_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);

-- nodes: one row per running node (a started queue client), written with its
-- heartbeat and deleted when it stops cleanly. queues is a JSON array of
-- {"queue", "max_workers", "busy"}. A row whose expires_at has passed
-- belongs to a node that stopped heartbeating; the leader deletes it.
CREATE TABLE {schema}.nodes (
  id text PRIMARY KEY,
  hostname text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  queues jsonb NOT NULL DEFAULT '[]',
  started_at timestamptz NOT NULL,
  heartbeat_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
