-- Lead delivery: an owner's SMS is a message in the outbox, followed to its end; the channel's own
-- id for what it sent (a WhatsApp message id) is kept; per-box secrets live in settings.
-- lead_deliveries.state: 'pending' (waiting for next_attempt_ms), 'sending' (an attempt in flight),
-- 'queued' (an SMS handed to the outbox), 'delivered', 'failed'.
ALTER TABLE lead_deliveries ADD COLUMN message_id INTEGER REFERENCES messages(id);
ALTER TABLE lead_deliveries ADD COLUMN external_id TEXT;
ALTER TABLE lead_deliveries ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX lead_deliveries_due ON lead_deliveries(state, next_attempt_ms);
CREATE INDEX lead_deliveries_message ON lead_deliveries(message_id);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
