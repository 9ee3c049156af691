ALTER TABLE calls DROP COLUMN turn_elevenlabs_p50_ms;
ALTER TABLE calls DROP COLUMN turn_p95_ms;
ALTER TABLE calls DROP COLUMN turn_p50_ms;
ALTER TABLE calls DROP COLUMN turns;
