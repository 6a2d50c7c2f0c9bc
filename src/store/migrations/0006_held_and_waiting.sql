-- A text may be held until a time (profile.first_text_delay_seconds: a moment for the business to
-- call back first); 0 = send at once.
-- Inbound messages may now be in state 'waiting': stored, but not yet read by the assistant (the
-- local model is asked outside the store's transaction); they are stepped in order, also after a
-- restart. No schema change is needed for that; the index finds them.
ALTER TABLE messages ADD COLUMN send_after_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_waiting ON messages(state, conversation_id, id) WHERE direction = 'in' AND state = 'waiting';
