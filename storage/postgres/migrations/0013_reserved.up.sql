-- Placeholder on branch obslogs for a version other branches take (0013
-- retention, 0014 ...): drop this file when merging, the real one replaces it.
SELECT 1 FROM {schema}.runs WHERE false;
