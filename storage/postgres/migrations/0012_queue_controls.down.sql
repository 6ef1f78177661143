DROP TABLE IF EXISTS {schema}.queue_controls;
