-- Unique job graphs: one row per graph key, naming the graph's jobs. The
-- primary key decides between racing inserts of one graph: the second waits
-- for the first to commit, then finds its jobs here. A row is deleted once
-- none of its jobs is stored (JobGraphPrune), which frees the key.
CREATE TABLE {schema}.job_graphs (
  key        text PRIMARY KEY,
  names      text[] NOT NULL DEFAULT '{}',
  job_ids    bigint[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_graphs_created_at ON {schema}.job_graphs (created_at);
