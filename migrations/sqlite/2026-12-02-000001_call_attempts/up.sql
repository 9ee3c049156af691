-- A call id used again (a carrier retrying, an id reused) gets a record of its own: calls and their events
-- are keyed on (call_id, attempt). Rows from before keep attempt 0. SQLite cannot change a primary key or
-- add a CHECK in place, so both tables are rebuilt.
--
-- What a row may hold is bounded the same on both backends (generous multiples of what the gateway itself
-- keeps): a row past these is refused by the database and set aside in the dead-letter file, on SQLite as
-- on PostgreSQL, instead of being stored on one and refused on the other.
CREATE TABLE calls_new (
    call_id TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    stream_id TEXT,
    carrier TEXT NOT NULL,
    direction TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    agent_id TEXT,
    conversation_id TEXT,
    state TEXT NOT NULL,
    end_reason TEXT,
    dial_status TEXT,
    recording_url TEXT,
    started_at BIGINT NOT NULL,
    answered_at BIGINT,
    ended_at BIGINT,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    frames_in BIGINT NOT NULL DEFAULT 0,
    frames_out BIGINT NOT NULL DEFAULT 0,
    bytes_in BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    interruptions BIGINT NOT NULL DEFAULT 0,
    upstream_reconnects BIGINT NOT NULL DEFAULT 0,
    carrier_format TEXT,
    agent_input_format TEXT,
    agent_output_format TEXT,
    error_detail TEXT,
    revision BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (call_id, attempt),
    CONSTRAINT calls_bounded CHECK (
        length(call_id) BETWEEN 1 AND 256 AND attempt >= 0
        AND length(stream_id) <= 256 AND length(carrier) <= 32 AND length(direction) <= 16
        AND length(from_number) <= 64 AND length(to_number) <= 64
        AND length(agent_id) <= 256 AND length(conversation_id) <= 256
        AND length(state) <= 32 AND length(end_reason) <= 64
        AND length(dial_status) <= 64 AND length(recording_url) <= 4096
        AND length(carrier_format) <= 32 AND length(agent_input_format) <= 32 AND length(agent_output_format) <= 32
        AND length(error_detail) <= 8192
    )
);
INSERT INTO calls_new (call_id, attempt, stream_id, carrier, direction, from_number, to_number, agent_id,
    conversation_id, state, end_reason, dial_status, recording_url, started_at, answered_at, ended_at,
    duration_ms, frames_in, frames_out, bytes_in, bytes_out, interruptions, upstream_reconnects, carrier_format,
    agent_input_format, agent_output_format, error_detail, revision, updated_at)
SELECT call_id, 0, stream_id, carrier, direction, from_number, to_number, agent_id,
    conversation_id, state, end_reason, dial_status, recording_url, started_at, answered_at, ended_at,
    duration_ms, frames_in, frames_out, bytes_in, bytes_out, interruptions, upstream_reconnects, carrier_format,
    agent_input_format, agent_output_format, error_detail, revision, updated_at FROM calls;
DROP TABLE calls;
ALTER TABLE calls_new RENAME TO calls;
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_state ON calls (state);

CREATE TABLE call_events_new (
    call_id TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, attempt, seq),
    CONSTRAINT call_events_bounded CHECK (
        length(call_id) BETWEEN 1 AND 256 AND attempt >= 0 AND length(kind) <= 32 AND length(detail) <= 16384
    )
);
INSERT INTO call_events_new (call_id, attempt, seq, at_ms, kind, detail)
SELECT call_id, 0, seq, at_ms, kind, detail FROM call_events;
DROP TABLE call_events;
ALTER TABLE call_events_new RENAME TO call_events;
