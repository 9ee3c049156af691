-- A call id used again (a carrier retrying, an id reused) gets a record of its own: calls and their events
-- are keyed on (call_id, attempt). Rows from before keep attempt 0.
ALTER TABLE calls ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls ADD PRIMARY KEY (call_id, attempt);
ALTER TABLE call_events ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events ADD PRIMARY KEY (call_id, attempt, seq);

-- What a row may hold, the same on both backends (generous multiples of what the gateway itself keeps):
-- a row past these is refused by the database and set aside in the dead-letter file, on SQLite as on
-- PostgreSQL, instead of being stored on one and refused on the other.
ALTER TABLE calls ADD CONSTRAINT calls_bounded CHECK (
    length(call_id) BETWEEN 1 AND 256 AND attempt >= 0
    AND length(stream_id) <= 256 AND length(carrier) <= 32 AND length(direction) <= 16
    AND length(from_number) <= 64 AND length(to_number) <= 64
    AND length(agent_id) <= 256 AND length(conversation_id) <= 256
    AND length(state) <= 32 AND length(end_reason) <= 64
    AND length(dial_status) <= 64 AND length(recording_url) <= 4096
    AND length(carrier_format) <= 32 AND length(agent_input_format) <= 32 AND length(agent_output_format) <= 32
    AND length(error_detail) <= 8192
);
ALTER TABLE call_events ADD CONSTRAINT call_events_bounded CHECK (
    length(call_id) BETWEEN 1 AND 256 AND attempt >= 0 AND length(kind) <= 32 AND length(detail) <= 16384
);
