ALTER TABLE {schema}.outbox DROP COLUMN IF EXISTS meta;
