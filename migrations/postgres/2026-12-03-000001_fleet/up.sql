-- Several gateways on one database (README: Running a fleet). Every call record names the instance that
-- carried it, so an instance closes only its own leftovers and the fleet closes a lost instance's calls.
-- Rows from before carry '' (closed by the first instance that starts).
ALTER TABLE calls ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD CONSTRAINT calls_instance_bounded CHECK (length(instance_id) <= 64);
CREATE INDEX calls_open_by_instance ON calls (instance_id) WHERE state IN ('connecting', 'active', 'ending');

-- One row per live instance: its lease (last_seen, on the database's clock) and the block of fleet slots it
-- holds (held_slots: its live calls plus the spare ones it may admit into without asking).
CREATE TABLE fleet_instances (
    instance_id TEXT PRIMARY KEY CHECK (length(instance_id) BETWEEN 1 AND 64),
    public_url TEXT NOT NULL CHECK (length(public_url) <= 512),
    admin_url TEXT NOT NULL CHECK (length(admin_url) <= 512),
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    draining BOOLEAN NOT NULL DEFAULT false,
    live_calls INTEGER NOT NULL DEFAULT 0 CHECK (live_calls >= 0),
    local_cap INTEGER NOT NULL CHECK (local_cap >= 0),
    held_slots INTEGER NOT NULL DEFAULT 0 CHECK (held_slots >= 0),
    fallback_calls INTEGER NOT NULL DEFAULT 0 CHECK (fallback_calls >= 0)
);

-- The fleet's cap: one row, locked by every grant of slots, so grants are serialised and never add up to
-- more than the cap.
CREATE TABLE fleet_cap (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    max_concurrent_calls INTEGER NOT NULL CHECK (max_concurrent_calls >= 0),
    updated_by TEXT NOT NULL DEFAULT ''
);
