DROP TABLE fleet_cap;
DROP TABLE fleet_instances;
DROP INDEX calls_open_by_instance;
ALTER TABLE calls DROP CONSTRAINT calls_instance_bounded;
ALTER TABLE calls DROP COLUMN instance_id;
