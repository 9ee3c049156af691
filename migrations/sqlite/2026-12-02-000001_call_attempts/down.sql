-- The old key holds one row per call id: keep each call id's latest attempt.
CREATE TABLE calls_old AS SELECT * FROM calls c
    WHERE attempt = (SELECT MAX(attempt) FROM calls d WHERE d.call_id = c.call_id);
CREATE TABLE call_events_old AS SELECT * FROM call_events e
    WHERE attempt = COALESCE((SELECT MAX(attempt) FROM calls c WHERE c.call_id = e.call_id), e.attempt);
DROP TABLE calls;
DROP TABLE call_events;
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY NOT NULL,
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
    updated_at BIGINT NOT NULL
);
INSERT INTO calls SELECT call_id, stream_id, carrier, direction, from_number, to_number, agent_id,
    conversation_id, state, end_reason, dial_status, recording_url, started_at, answered_at, ended_at,
    duration_ms, frames_in, frames_out, bytes_in, bytes_out, interruptions, upstream_reconnects, carrier_format,
    agent_input_format, agent_output_format, error_detail, revision, updated_at FROM calls_old;
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_state ON calls (state);
CREATE TABLE call_events (
    call_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
INSERT INTO call_events SELECT call_id, seq, at_ms, kind, detail FROM call_events_old;
DROP TABLE calls_old;
DROP TABLE call_events_old;
