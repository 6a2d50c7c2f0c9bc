-- SIP accounts as the daemon last saw them, for `textback sip status`, `doctor` and the dashboard.
-- One row per configured account, rewritten on each state change.
-- state: 'registering', 'registered', 'failed', 'unregistered' (not trying: start-up, shutdown).
CREATE TABLE sip_accounts (
    name                TEXT PRIMARY KEY,
    state               TEXT NOT NULL,
    registered_until_ms INTEGER,
    next_refresh_ms     INTEGER,
    retry_at_ms         INTEGER,
    last_error          TEXT,
    last_response       TEXT,
    local_address       TEXT NOT NULL,
    daemon_pid          INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
);
