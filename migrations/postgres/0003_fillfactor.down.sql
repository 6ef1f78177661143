ALTER TABLE {schema}.run_steps RESET (fillfactor);
ALTER TABLE {schema}.runs RESET (fillfactor);
