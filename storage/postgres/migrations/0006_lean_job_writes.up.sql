-- Every claim and every completion updates a job row, and PostgreSQL
-- re-reads and re-plans the table's CHECK constraints for each such
-- statement: at 16 workers that was about a tenth of the database's work
-- per workflow step (see docs/performance.md). The storage layer refuses the
-- values these constraints refused (storage.ErrInvalid); the queue validates
-- them before that, with its own errors.
ALTER TABLE {schema}.jobs
  DROP CONSTRAINT jobs_state_check,
  DROP CONSTRAINT jobs_priority_check,
  DROP CONSTRAINT jobs_max_attempts_check,
  DROP CONSTRAINT jobs_dependency_failure_check;
