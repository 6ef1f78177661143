-- The run's life has one owner (docs/architecture.md, "Run states").
--
-- settled_at: when a finished run's obligations were met: its OnFinish
-- callback staged and, for a child, its parent counted off. A run is settled
-- once per finish, in the transaction that sets this column (guarded by it
-- being NULL), so a crash or a redelivered job can neither skip nor repeat
-- them. Every run that finished before this migration was settled in the
-- transaction that finished it.
--
-- A run may now also be 'halted' (steps.Halt): a resting state that fetch
-- and lease refuse and only Retry (or Cancel) leaves. The column is text
-- without a CHECK (migration 0005), so the new state needs no DDL.
--
-- counted_at: when a child run was counted off its awaiting parent. A child
-- is counted once in its life, even when it is retried and finishes again
-- (Retry clears settled_at, never counted_at).
ALTER TABLE {schema}.runs ADD COLUMN settled_at timestamptz, ADD COLUMN counted_at timestamptz;
UPDATE {schema}.runs SET settled_at = finished_at
WHERE state IN ('succeeded', 'failed', 'cancelled') AND settled_at IS NULL;
UPDATE {schema}.runs SET counted_at = finished_at
WHERE parent_run_id IS NOT NULL AND state IN ('succeeded', 'failed', 'cancelled');
