-- Dependency graphs: a pending job waits for the jobs in depends_on.
ALTER TABLE {schema}.jobs
  ADD COLUMN depends_on bigint[],
  ADD COLUMN dependency_failure text NOT NULL DEFAULT 'cancel'
    CHECK (dependency_failure IN ('cancel', 'discard', 'ignore'));
CREATE INDEX jobs_pending_deps ON {schema}.jobs USING gin (depends_on) WHERE state = 'pending';
CREATE INDEX jobs_pending ON {schema}.jobs (id) WHERE state = 'pending';

-- The outbox: messages for systems outside this database, staged in a step's
-- transaction and delivered by a relay after commit, in order per key.
CREATE TABLE {schema}.outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic           text NOT NULL,
  key             text NOT NULL,
  payload         jsonb NOT NULL,
  run_id          uuid,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now()
);
-- Undelivered messages by key and order: the head of each key is its
-- smallest undelivered id.
CREATE INDEX outbox_undelivered ON {schema}.outbox (key, id) WHERE delivered_at IS NULL;
CREATE INDEX outbox_delivered ON {schema}.outbox (delivered_at) WHERE delivered_at IS NOT NULL;
