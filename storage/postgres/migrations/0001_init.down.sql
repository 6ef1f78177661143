DROP TABLE IF EXISTS {schema}.jobs;
DROP TABLE IF EXISTS {schema}.run_steps;
DROP TABLE IF EXISTS {schema}.runs;
DROP FUNCTION IF EXISTS {schema}.job_state_bit(text);
