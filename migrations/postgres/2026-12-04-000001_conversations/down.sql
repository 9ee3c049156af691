ALTER TABLE calls DROP CONSTRAINT calls_conversations_bounded;
ALTER TABLE calls DROP COLUMN conversation_ids;
