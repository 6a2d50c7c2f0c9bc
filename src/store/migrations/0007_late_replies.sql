-- Late replies: a text the caller sends after their lead went out is told to the lead's
-- recipients, one more delivery row per recipient and channel. `reply_id` is the id of the inbound
-- `messages` row the notice is about, 0 for the lead's summary itself; the unique key gains it, so
-- a reply is told to each recipient on each channel once.
--
-- SQLite cannot change a table's UNIQUE constraint in place, so the table is rebuilt the way
-- https://www.sqlite.org/lang_altertable.html#otheralter describes: new table, copy, drop, rename,
-- indexes again. Migrations run inside a transaction with foreign keys enforced, where
-- `PRAGMA foreign_keys` cannot be changed; it need not be: no table refers to lead_deliveries, so
-- dropping it deletes no parent row, and the copied rows satisfy their own references (they did
-- in the old table, under the same enforcement). Renaming rewrites references to the renamed
-- table in other tables, views and triggers; there are none.
CREATE TABLE lead_deliveries_new (
    id              INTEGER PRIMARY KEY,
    lead_id         INTEGER NOT NULL REFERENCES leads(id),
    recipient       TEXT    NOT NULL,
    channel         TEXT    NOT NULL,          -- 'email' | 'sms' | 'whatsapp' | 'webhook'
    target          TEXT    NOT NULL,
    state           TEXT    NOT NULL,          -- 'pending' | 'sending' | 'queued' | 'delivered' | 'failed'
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    message_id      INTEGER REFERENCES messages(id),
    external_id     TEXT,
    updated_ms      INTEGER NOT NULL DEFAULT 0,
    reply_id        INTEGER NOT NULL DEFAULT 0, -- 0: the lead; else the inbound messages.id told
    UNIQUE (lead_id, recipient, channel, reply_id)
);

INSERT INTO lead_deliveries_new (id, lead_id, recipient, channel, target, state, attempts,
        last_error, next_attempt_ms, delivered_ms, message_id, external_id, updated_ms, reply_id)
    SELECT id, lead_id, recipient, channel, target, state, attempts,
        last_error, next_attempt_ms, delivered_ms, message_id, external_id, updated_ms, 0
    FROM lead_deliveries;

DROP TABLE lead_deliveries;
ALTER TABLE lead_deliveries_new RENAME TO lead_deliveries;

CREATE INDEX lead_deliveries_due ON lead_deliveries(state, next_attempt_ms);
CREATE INDEX lead_deliveries_message ON lead_deliveries(message_id);
