DROP TABLE IF EXISTS {schema}.job_graphs;
