-- How long the caller waited for the agent's answers (README: Turn latency): the call's turns, their median
-- and 95th percentile in milliseconds, and ElevenLabs' share at the median. Calls from before, and calls
-- with no answered turn, carry 0 and NULL.
ALTER TABLE calls ADD COLUMN turns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN turn_p50_ms BIGINT;
ALTER TABLE calls ADD COLUMN turn_p95_ms BIGINT;
ALTER TABLE calls ADD COLUMN turn_elevenlabs_p50_ms BIGINT;
