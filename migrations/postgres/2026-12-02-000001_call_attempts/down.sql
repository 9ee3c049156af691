ALTER TABLE call_events DROP CONSTRAINT call_events_bounded;
ALTER TABLE calls DROP CONSTRAINT calls_bounded;
-- The old key holds one row per call id: keep each call id's latest attempt.
DELETE FROM call_events e
    WHERE attempt <> COALESCE((SELECT MAX(attempt) FROM calls c WHERE c.call_id = e.call_id), e.attempt);
DELETE FROM calls c WHERE attempt <> (SELECT MAX(attempt) FROM calls d WHERE d.call_id = c.call_id);
ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events DROP COLUMN attempt;
ALTER TABLE call_events ADD PRIMARY KEY (call_id, seq);
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls DROP COLUMN attempt;
ALTER TABLE calls ADD PRIMARY KEY (call_id);
