-- Every ElevenLabs conversation of a call, in order, comma-separated: a call whose agent leg dropped and
-- was redialled had more than one (`conversation_id` stays the last). Rows from before carry ''.
ALTER TABLE calls ADD COLUMN conversation_ids TEXT NOT NULL DEFAULT '' CHECK (length(conversation_ids) <= 4096);
