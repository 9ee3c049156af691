ALTER TABLE calls DROP COLUMN conversation_ids;
