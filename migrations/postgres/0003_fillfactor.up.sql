-- Leave room in each page so the updates a step makes to its run (recovery
-- point, state, cursor, lease time) can be HOT updates that touch no index.
ALTER TABLE {schema}.runs SET (fillfactor = 80);
ALTER TABLE {schema}.run_steps SET (fillfactor = 80);
