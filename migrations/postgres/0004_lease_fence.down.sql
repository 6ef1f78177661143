DROP FUNCTION IF EXISTS {schema}.lease_lost(uuid);
