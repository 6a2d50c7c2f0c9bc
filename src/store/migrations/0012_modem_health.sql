-- What went wrong with each modem and its SIM, when, for how long, and whether a person was told:
-- for `textback doctor`, the dashboard's status page and /metrics. A fault is open while
-- cleared_ms is NULL; at most one open fault per modem and kind.
-- kind: 'refused' (the network refuses this SIM's texts), 'off_network' (searching, denied),
-- 'storage_full' (the SIM's message store), 'recipient_cap' (distinct recipients in 24 h),
-- 'not_answering' (the modem stopped answering AT), 'delivery_low' (few texts reported delivered).
CREATE TABLE modem_faults (
    id         INTEGER PRIMARY KEY,
    modem      TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    cause      TEXT    NOT NULL,   -- one word: 'not_subscribed', 'denied', 'searching', ...
    detail     TEXT    NOT NULL,   -- in words, with what to do
    started_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    cleared_ms INTEGER,
    alerted_ms INTEGER             -- when the business was told
);
CREATE INDEX modem_faults_open ON modem_faults(modem, kind, cleared_ms);

-- Each notice sent to the business about a fault, and the SMS that carries it when one does.
CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    fault_id   INTEGER NOT NULL REFERENCES modem_faults(id),
    recipient  TEXT    NOT NULL,
    channel    TEXT    NOT NULL,   -- 'sms' | 'log' (no channel could carry it)
    text       TEXT    NOT NULL,
    message_id INTEGER REFERENCES messages(id),
    created_ms INTEGER NOT NULL
);
CREATE INDEX alerts_by_fault ON alerts(fault_id);
