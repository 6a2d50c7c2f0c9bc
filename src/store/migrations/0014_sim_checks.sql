-- Each check of a SIM's credit by USSD (`modem.balance_ussd`): what the network answered, the
-- amount read from it, or why the check failed. For `textback doctor`, the dashboard's status
-- page and /metrics; a low amount also opens a 'low_balance' fault in modem_faults.
CREATE TABLE balance_checks (
    id         INTEGER PRIMARY KEY,
    modem      TEXT    NOT NULL,
    pence      INTEGER,            -- NULL: no amount in the answer, or no answer
    reply      TEXT,               -- the network's words, decoded
    error      TEXT,               -- why there was no answer
    checked_ms INTEGER NOT NULL
);
CREATE INDEX balance_checks_by_modem ON balance_checks(modem, id);

-- Each daily self-test (`modem.self_test`): the box texts a number that comes back to one of its
-- SIMs (its own, or another modem's) with a unique token, and the text must come back in time.
-- The row is written before the text is queued. A text that comes back is stored in messages
-- like any other but never starts a conversation.
CREATE TABLE self_tests (
    id          INTEGER PRIMARY KEY,
    modem       TEXT    NOT NULL,   -- the SIM that sent it
    recipient   TEXT    NOT NULL,   -- E.164
    token       TEXT    NOT NULL UNIQUE,
    message_id  INTEGER REFERENCES messages(id),
    state       TEXT    NOT NULL,   -- 'waiting' | 'passed' | 'failed'
    started_ms  INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    received_ms INTEGER,            -- when it came back (even late)
    received_on TEXT,               -- the modem it came back on
    detail      TEXT                -- why it failed
);
CREATE INDEX self_tests_by_modem ON self_tests(modem, id);

-- A conversation stays on the SIM it started on (the caller replies to that number), whichever
-- [[modem]] id or port that SIM has now: its ICCID, and the ICCID each modem id last reported.
ALTER TABLE conversations ADD COLUMN iccid TEXT;
CREATE TABLE modem_sims (
    modem   TEXT    PRIMARY KEY,
    iccid   TEXT    NOT NULL UNIQUE,
    seen_ms INTEGER NOT NULL
);
CREATE INDEX conversations_by_iccid ON conversations(iccid);
