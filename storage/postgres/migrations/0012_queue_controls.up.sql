-- Queue controls: what operators set for a queue on every node at once
-- (pause, workers per node), kept here so that a node that starts or
-- restarts obeys them. A row also stands for a queue being known: each
-- client registers the queues it works when it starts (a row with no
-- control set), so a pause or scale of a queue no node ever worked, and
-- with no unfinished job, can be refused as a likely typo.
-- Nodes read the rows of their queues every poll interval and when a
-- notification on the schema's "queues" channel hints that one changed.
CREATE TABLE {schema}.queue_controls (
  queue       text PRIMARY KEY,
  paused      boolean NOT NULL DEFAULT false,
  -- When the queue was paused; NULL while it is not.
  paused_at   timestamptz,
  -- Workers per node; NULL: each node's own configuration.
  max_workers integer CHECK (max_workers >= 1),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
