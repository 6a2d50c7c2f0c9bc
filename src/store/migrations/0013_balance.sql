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
