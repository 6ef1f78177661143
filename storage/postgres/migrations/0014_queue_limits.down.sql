DROP TABLE {schema}.queue_limits;
DROP TABLE {schema}.queue_slots;
