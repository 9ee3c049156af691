-- The gateway's own recording of each call attempt (docs/recording.md): beside `calls`, which is at diesel's
-- column limit. One row per recorded attempt, written when its file is closed; `url` once it is uploaded.
CREATE TABLE call_recordings (
    call_id TEXT NOT NULL CHECK (length(call_id) <= 256),
    carrier TEXT NOT NULL CHECK (length(carrier) <= 32),
    attempt BIGINT NOT NULL,
    path TEXT NOT NULL CHECK (length(path) <= 4096),
    bytes BIGINT NOT NULL CHECK (bytes >= 0),
    duration_ms BIGINT NOT NULL CHECK (duration_ms >= 0),
    complete BOOLEAN NOT NULL,
    lost_ms BIGINT NOT NULL CHECK (lost_ms >= 0),
    paused_ms BIGINT NOT NULL CHECK (paused_ms >= 0),
    error TEXT CHECK (length(error) <= 16384),
    url TEXT CHECK (length(url) <= 4096),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (call_id, carrier, attempt)
);
