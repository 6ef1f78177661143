-- Removes every table of 0001 (the record of versions stays).
DROP TABLE outbox;
DROP TABLE job_deps;
DROP TABLE jobs;
DROP TABLE run_steps;
DROP TABLE runs;
