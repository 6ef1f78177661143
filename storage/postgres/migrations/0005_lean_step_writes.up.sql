-- A step's transaction writes its run and its step log row. PostgreSQL
-- re-reads and re-plans a table's CHECK constraints for every statement that
-- writes it, and checks a foreign key with a query of its own for every row
-- inserted; on the step path that was about a tenth of the database's work
-- per step (see docs/performance.md). The run and step states are written
-- only from the storage layer, which refuses a state it does not know
-- (ErrInvalid), and a step row is only ever written together with its run,
-- in one statement.
ALTER TABLE {schema}.runs
  DROP CONSTRAINT runs_state_check,
  DROP CONSTRAINT runs_awaiting_check;
ALTER TABLE {schema}.run_steps
  DROP CONSTRAINT run_steps_state_check,
  DROP CONSTRAINT run_steps_run_id_fkey;

-- Deleting runs still deletes their step logs, as the foreign key's
-- ON DELETE CASCADE did, once per statement rather than once per row. The
-- body names the schema through TG_TABLE_SCHEMA, so it survives a renamed
-- schema and needs no schema name inside its quotes.
CREATE FUNCTION {schema}.delete_run_steps() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('DELETE FROM %I.run_steps WHERE run_id IN (SELECT id FROM gone)', TG_TABLE_SCHEMA);
  RETURN NULL;
END
$$;
CREATE TRIGGER runs_delete_steps AFTER DELETE ON {schema}.runs
  REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION {schema}.delete_run_steps();
