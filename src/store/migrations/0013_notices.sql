-- Notices: what the box tells a business's recipients that is not a lead (a missed caller who got
-- no text and needs a call back, a SIM or modem that needs a person, the morning summary), by
-- email, WhatsApp or webhook. (The owner's SMS copy goes through the outbox, as today.) A notice
-- is a row before anything is sent, written whole: the worker sends what the row says.
-- kind: 'call_back' | 'alert' | 'summary'. channel: 'email' | 'whatsapp' | 'webhook'.
-- state: 'pending' (waiting for gather_until_ms and next_attempt_ms), 'sending' (an attempt in
-- flight), 'delivered', 'failed'. A call-back notice gathers: until gather_until_ms, another
-- call rewrites its subject, text, html and json (the json's "calls" list) instead of a new row.
CREATE TABLE notices (
    id              INTEGER PRIMARY KEY,
    profile         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    html            TEXT,
    json            TEXT    NOT NULL,          -- the webhook's body (without "box")
    idempotency_key TEXT    NOT NULL UNIQUE,   -- the webhook's Idempotency-Key, the email's Message-ID
    fault_id        INTEGER REFERENCES modem_faults(id),
    state           TEXT    NOT NULL,
    gather_until_ms INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    external_id     TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    delivered_ms    INTEGER
);
CREATE INDEX notices_due ON notices(state, next_attempt_ms);
CREATE INDEX notices_gathering ON notices(kind, recipient, channel, target, state, gather_until_ms);

-- The morning summary: one row per profile and UK-local day it covers, written in the same
-- transaction as its notices and SMS, so a restart never sends a day twice.
CREATE TABLE summaries (
    profile    TEXT    NOT NULL,
    day        TEXT    NOT NULL,               -- YYYY-MM-DD, the UK-local day summarised
    notices    INTEGER NOT NULL,               -- how many notices and SMS it made (0: nothing to say)
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (profile, day)
);
