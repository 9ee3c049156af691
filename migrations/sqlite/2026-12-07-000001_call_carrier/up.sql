-- A call is its carrier's and its id's: two carriers' calls of one id are two calls, whatever attempt
-- numbers their instances gave them (two instances of a fleet may number an attempt alike in the same
-- millisecond). Calls and their events are keyed on (call_id, carrier, attempt). The old key made each
-- (call_id, attempt) unique, so every event belongs to exactly one call and takes its carrier. SQLite cannot
-- change a primary key in place: both tables are rebuilt, with every column and bound they had.
CREATE TABLE call_events_new (
    call_id TEXT NOT NULL,
    carrier TEXT NOT NULL DEFAULT 'mcube' CHECK (length(carrier) <= 32),
    attempt BIGINT NOT NULL DEFAULT 0,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, carrier, attempt, seq),
    CONSTRAINT call_events_bounded CHECK (
        length(call_id) BETWEEN 1 AND 256 AND attempt >= 0 AND length(kind) <= 32 AND length(detail) <= 16384
    )
);
INSERT INTO call_events_new (call_id, carrier, attempt, seq, at_ms, kind, detail)
SELECT e.call_id, COALESCE((SELECT c.carrier FROM calls c WHERE c.call_id = e.call_id AND c.attempt = e.attempt), 'mcube'),
    e.attempt, e.seq, e.at_ms, e.kind, e.detail FROM call_events e;
DROP TABLE call_events;
ALTER TABLE call_events_new RENAME TO call_events;

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
    instance_id TEXT NOT NULL DEFAULT '' CHECK (length(instance_id) <= 64),
    conversation_ids TEXT NOT NULL DEFAULT '' CHECK (length(conversation_ids) <= 4096),
    route TEXT NOT NULL DEFAULT '' CHECK (length(route) <= 64),
    PRIMARY KEY (call_id, carrier, attempt),
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
    agent_input_format, agent_output_format, error_detail, revision, updated_at, instance_id, conversation_ids,
    route)
SELECT call_id, attempt, stream_id, carrier, direction, from_number, to_number, agent_id,
    conversation_id, state, end_reason, dial_status, recording_url, started_at, answered_at, ended_at,
    duration_ms, frames_in, frames_out, bytes_in, bytes_out, interruptions, upstream_reconnects, carrier_format,
    agent_input_format, agent_output_format, error_detail, revision, updated_at, instance_id, conversation_ids,
    route FROM calls;
DROP TABLE calls;
ALTER TABLE calls_new RENAME TO calls;
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_state ON calls (state);
