-- The conversation engine's whole state (JSON), so that a restart continues a conversation where
-- it was; and whether a lead is urgent (the caller asked to be called, or said it is urgent).
ALTER TABLE conversations ADD COLUMN engine_state TEXT;
ALTER TABLE leads ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;
