ALTER TABLE runs DROP COLUMN tags;
ALTER TABLE jobs DROP COLUMN tags;
DROP TRIGGER runs_delete_step_details;
DROP TABLE run_step_failures;
DROP TABLE run_step_logs;
