-- Notifications are hints, not commands: any role that can connect may
-- LISTEN to and NOTIFY on any channel, whatever its grants. So that listening
-- tells such a role no queue names, an insert wake-up carries a keyed hash of
-- its queue's name (the first 16 bytes of SHA-256 of this key followed by the
-- name, in hex), and the key lives here, readable only by roles granted
-- SELECT on this table. A role that enqueues jobs, completes them or retries
-- them needs that grant: the statements that wake workers read the key.
-- Rotating the key (UPDATE, then restart or reconnect the workers) is safe:
-- until a worker reloads the hashes of its queues, it finds new jobs by
-- polling.
CREATE TABLE {schema}.notify_key (
  key bytea NOT NULL,
  -- At most one row.
  one boolean PRIMARY KEY DEFAULT true CHECK (one)
);
-- gen_random_uuid draws from the server's strong random source: two of them
-- give 244 random bits.
INSERT INTO {schema}.notify_key (key)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
