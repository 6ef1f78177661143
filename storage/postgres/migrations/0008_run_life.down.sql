UPDATE {schema}.runs SET state = 'pending' WHERE state = 'halted';
ALTER TABLE {schema}.runs DROP COLUMN settled_at, DROP COLUMN counted_at;
