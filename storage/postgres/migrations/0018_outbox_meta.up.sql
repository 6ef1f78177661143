-- Data about an outbox message that is not its payload, as a JSON object:
-- what the engine's publish hooks (workflow.Config.PublishHooks) or the
-- stager wrote, such as the trace context package otelacidic keeps under
-- "otel". NULL when there is none, so messages without it store nothing
-- more. Adding a nullable column without a default rewrites no row.
ALTER TABLE {schema}.outbox ADD COLUMN meta jsonb;
