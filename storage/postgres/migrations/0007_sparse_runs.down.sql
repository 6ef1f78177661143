ALTER TABLE {schema}.runs SET (fillfactor = 80);
