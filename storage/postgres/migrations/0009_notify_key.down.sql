DROP TABLE IF EXISTS {schema}.notify_key;
