-- The old key holds one row per (call_id, attempt): of calls that share one, Mcube's is kept.
DELETE FROM call_events e WHERE EXISTS (SELECT 1 FROM call_events o WHERE o.call_id = e.call_id
    AND o.attempt = e.attempt AND o.seq = e.seq AND o.carrier < e.carrier);
DELETE FROM calls c WHERE EXISTS (SELECT 1 FROM calls o WHERE o.call_id = c.call_id
    AND o.attempt = c.attempt AND o.carrier < c.carrier);
ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events ADD PRIMARY KEY (call_id, attempt, seq);
ALTER TABLE call_events DROP CONSTRAINT call_events_carrier_bounded;
ALTER TABLE call_events DROP COLUMN carrier;
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls ADD PRIMARY KEY (call_id, attempt);
