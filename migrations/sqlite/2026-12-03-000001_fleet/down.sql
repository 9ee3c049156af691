ALTER TABLE calls DROP COLUMN instance_id;
