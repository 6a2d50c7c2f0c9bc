-- Lead states: where the business is with each lead, new -> called_back -> won | lost (any order:
-- a person may correct a mistake), with who set it and when. `lead_events` keeps every change,
-- so the dashboard shows the history and a CRM is told each one (as a webhook delivery row,
-- `event_id`).
ALTER TABLE leads ADD COLUMN state TEXT NOT NULL DEFAULT 'new';
ALTER TABLE leads ADD COLUMN state_by TEXT;
ALTER TABLE leads ADD COLUMN state_ms INTEGER;

CREATE TABLE lead_events (
    id      INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads(id),
    state   TEXT    NOT NULL,              -- 'new' | 'called_back' | 'won' | 'lost'
    by      TEXT    NOT NULL,              -- who: "dashboard", "api", "cli: NAME", "sms: 07700 900456"
    at_ms   INTEGER NOT NULL
);
CREATE INDEX lead_events_by_lead ON lead_events(lead_id, id);

-- A delivery may now tell of a state change (`event_id`, a lead_events row; 0 otherwise). The
-- unique key gains it, so each change is told to each recipient on each channel once. Rebuilt as
-- 0007 did (see there why this is safe inside the migration's transaction).
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
    reply_id        INTEGER NOT NULL DEFAULT 0, -- 0: not a reply; else the inbound messages.id told
    event_id        INTEGER NOT NULL DEFAULT 0, -- 0: not a state change; else the lead_events.id told
    UNIQUE (lead_id, recipient, channel, reply_id, event_id)
);

INSERT INTO lead_deliveries_new (id, lead_id, recipient, channel, target, state, attempts,
        last_error, next_attempt_ms, delivered_ms, message_id, external_id, updated_ms, reply_id, event_id)
    SELECT id, lead_id, recipient, channel, target, state, attempts,
        last_error, next_attempt_ms, delivered_ms, message_id, external_id, updated_ms, reply_id, 0
    FROM lead_deliveries;

DROP TABLE lead_deliveries;
ALTER TABLE lead_deliveries_new RENAME TO lead_deliveries;

CREATE INDEX lead_deliveries_due ON lead_deliveries(state, next_attempt_ms);
CREATE INDEX lead_deliveries_message ON lead_deliveries(message_id);
