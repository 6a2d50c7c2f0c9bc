-- When each part was accepted by the network, so that a status report is matched only to a part
-- sent within the report window (TP-MR wraps at 256, so an old part can share a reference).
ALTER TABLE message_parts ADD COLUMN sent_ms INTEGER NOT NULL DEFAULT 0;
UPDATE message_parts SET sent_ms = updated_ms;
CREATE INDEX message_parts_sent ON message_parts (reference, sent_ms);
