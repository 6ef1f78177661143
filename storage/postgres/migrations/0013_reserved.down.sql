-- Placeholder on branch obslogs; see the up file.
SELECT 1 FROM {schema}.runs WHERE false;
