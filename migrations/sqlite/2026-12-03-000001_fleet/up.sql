-- Every call record names the instance that carried it (a fleet needs PostgreSQL; SQLite serves one
-- instance, but its records carry the name too). Rows from before carry ''.
ALTER TABLE calls ADD COLUMN instance_id TEXT NOT NULL DEFAULT '' CHECK (length(instance_id) <= 64);
