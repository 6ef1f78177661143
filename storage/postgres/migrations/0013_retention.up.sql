-- Retention by final state (queue.Config.Retention): finished jobs are
-- pruned per state and queue, and some queues keep theirs for ever. The
-- pruning statement walks this index one (state, queue) at a time, oldest
-- first, jumping from one queue to the next with one probe, so the jobs of
-- a kept queue, or of a state kept longer, are never read by a prune. It
-- replaces jobs_finalized (finalized_at alone), which made every prune read
-- all the kept jobs older than its cutoff. Only finished jobs are in it, as
-- before, so it costs the job path nothing more: one entry per job, written
-- when the job finishes.
--
-- Runs need no index of their own: they are pruned through
-- runs_workflow_created, one workflow at a time, and an index on their state
-- or finish time would make the updates that change them leave their heap
-- page (not HOT; see migration 0003).
CREATE INDEX jobs_final ON {schema}.jobs (state, queue, finalized_at) WHERE finalized_at IS NOT NULL;
DROP INDEX {schema}.jobs_finalized;
