-- textback schema, version 1. Never edit once released: add a new numbered file instead.
-- Times are milliseconds since the Unix epoch (UTC). Numbers are E.164 strings.

-- Every missed call, texted or not, with the policy's reason when not.
CREATE TABLE calls (
    id              INTEGER PRIMARY KEY,
    call_key        TEXT    NOT NULL UNIQUE,   -- SIP Call-ID, or the modem driver's key for a ring
    source          TEXT    NOT NULL,          -- 'modem' | 'sip'
    caller          TEXT,                      -- NULL when withheld
    caller_raw      TEXT    NOT NULL,          -- as the network gave it
    called          TEXT,                      -- the business number called, when known
    profile         TEXT    NOT NULL,
    modem           TEXT,
    at_ms           INTEGER NOT NULL,
    decision        TEXT    NOT NULL,          -- 'text' | 'skip'
    reason_code     TEXT,                      -- SkipReason::code
    reason          TEXT,                      -- SkipReason::describe
    conversation_id INTEGER REFERENCES conversations(id)
);
CREATE INDEX calls_at ON calls(at_ms);

-- One caller talking with one profile. `state` moves open -> completed | opted_out | abandoned.
CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    profile       TEXT    NOT NULL,
    caller        TEXT    NOT NULL,
    modem         TEXT    NOT NULL,           -- replies come to the SIM that sent the first text
    state         TEXT    NOT NULL,
    next_question INTEGER NOT NULL DEFAULT 0,
    answers       TEXT    NOT NULL DEFAULT '[]', -- JSON [[question_id, text], ...]
    started_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX conversations_by_caller ON conversations(caller, state);

-- Every SMS, in and out. Out: queued -> sending -> sent -> delivered | failed.
-- In: received. An outbound row exists before the modem is asked to send it.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER REFERENCES conversations(id),
    direction       TEXT    NOT NULL,          -- 'out' | 'in'
    peer            TEXT    NOT NULL,          -- the other party's number
    modem           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    parts           INTEGER NOT NULL DEFAULT 1,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    dedup_key       TEXT    UNIQUE,            -- inbound: sender + service centre time + text
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX messages_outbox ON messages(modem, state, id);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);

-- The parts of a sent SMS with the reference the network gave each, for delivery reports.
CREATE TABLE message_parts (
    message_id  INTEGER NOT NULL REFERENCES messages(id),
    part        INTEGER NOT NULL,
    reference   INTEGER NOT NULL,              -- TP-MR, 0..255, wraps
    status      TEXT    NOT NULL,              -- 'sent' | 'delivered' | 'failed' | 'pending'
    status_text TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (message_id, part)
);
CREATE INDEX message_parts_reference ON message_parts(reference);

-- A conversation that produced something for the business.
CREATE TABLE leads (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL UNIQUE REFERENCES conversations(id),
    profile         TEXT    NOT NULL,
    caller          TEXT    NOT NULL,
    answers         TEXT    NOT NULL,          -- JSON [[question_id, text], ...]
    complete        INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL
);

-- One row per lead, recipient and channel: the durable intent to tell someone.
CREATE TABLE lead_deliveries (
    id              INTEGER PRIMARY KEY,
    lead_id         INTEGER NOT NULL REFERENCES leads(id),
    recipient       TEXT    NOT NULL,
    channel         TEXT    NOT NULL,          -- 'email' | 'sms' | 'whatsapp' | 'webhook'
    target          TEXT    NOT NULL,
    state           TEXT    NOT NULL,          -- 'pending' | 'delivered' | 'failed'
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_ms INTEGER NOT NULL,
    delivered_ms    INTEGER,
    UNIQUE (lead_id, recipient, channel)
);

-- Numbers that replied STOP.
CREATE TABLE opt_outs (
    number TEXT    PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    source TEXT    NOT NULL                    -- 'sms' | 'dashboard' | 'cli'
);

-- What happened to each call, step by step, for `doctor --watch` and the dashboard.
CREATE TABLE journal (
    id              INTEGER PRIMARY KEY,
    at_ms           INTEGER NOT NULL,
    call_id         INTEGER REFERENCES calls(id),
    conversation_id INTEGER REFERENCES conversations(id),
    step            TEXT    NOT NULL,
    detail          TEXT    NOT NULL
);
CREATE INDEX journal_by_conversation ON journal(conversation_id, id);

-- Parts of multipart SMS that came in, kept until every part is here (in any order).
CREATE TABLE sms_fragments (
    modem       TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    reference   INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    sequence    INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (modem, sender, reference, total, sequence)
);
