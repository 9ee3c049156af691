-- Every call the gateway saw: admitted, refused, completed, failed.
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
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_state ON calls (state);

-- What happened during a call, in order: transcripts, agent responses, interruptions, DTMF, tool calls,
-- errors, state changes.
CREATE TABLE call_events (
    call_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
