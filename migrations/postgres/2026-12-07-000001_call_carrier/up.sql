-- A call is its carrier's and its id's: two carriers' calls of one id are two calls, whatever attempt
-- numbers their instances gave them (two instances of a fleet may number an attempt alike in the same
-- millisecond). Calls and their events are keyed on (call_id, carrier, attempt). The old key made each
-- (call_id, attempt) unique, so every event belongs to exactly one call and takes its carrier.
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls ADD PRIMARY KEY (call_id, carrier, attempt);
ALTER TABLE call_events ADD COLUMN carrier TEXT NOT NULL DEFAULT 'mcube';
UPDATE call_events e SET carrier = c.carrier FROM calls c WHERE c.call_id = e.call_id AND c.attempt = e.attempt;
ALTER TABLE call_events ADD CONSTRAINT call_events_carrier_bounded CHECK (length(carrier) <= 32);
ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events ADD PRIMARY KEY (call_id, carrier, attempt, seq);
