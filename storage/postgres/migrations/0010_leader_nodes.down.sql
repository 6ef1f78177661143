DROP TABLE IF EXISTS {schema}.nodes;
DROP TABLE IF EXISTS {schema}.leader;
