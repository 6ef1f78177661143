DROP TRIGGER IF EXISTS runs_delete_steps ON {schema}.runs;
DROP FUNCTION IF EXISTS {schema}.delete_run_steps();
DELETE FROM {schema}.run_steps s WHERE NOT EXISTS (SELECT 1 FROM {schema}.runs r WHERE r.id = s.run_id);
ALTER TABLE {schema}.run_steps
  ADD CONSTRAINT run_steps_run_id_fkey FOREIGN KEY (run_id) REFERENCES {schema}.runs (id) ON DELETE CASCADE,
  ADD CONSTRAINT run_steps_state_check CHECK (state IN ('succeeded', 'failed', 'awaiting', 'halted', 'repeating'));
ALTER TABLE {schema}.runs
  ADD CONSTRAINT runs_state_check CHECK (state IN ('pending', 'running', 'awaiting', 'succeeded', 'failed', 'cancelled')),
  ADD CONSTRAINT runs_awaiting_check CHECK (awaiting >= 0);
