-- The owner in the loop. A staff member who replies to a caller takes the conversation over: the
-- assistant stays quiet in it from then on, and the caller's texts are forwarded to that number
-- (`owner`, since `owner_ms`). The assistant can be paused in one conversation (until
-- `paused_until_ms`) or for a whole business (`profile_pauses`). An outgoing text a person wrote
-- (not the assistant) names them in `messages.author` ("sms: 07700 900456", "dashboard").
ALTER TABLE conversations ADD COLUMN owner TEXT;
ALTER TABLE conversations ADD COLUMN owner_ms INTEGER;
ALTER TABLE conversations ADD COLUMN paused_until_ms INTEGER;
ALTER TABLE messages ADD COLUMN author TEXT;

CREATE TABLE profile_pauses (
    profile  TEXT    PRIMARY KEY,
    until_ms INTEGER NOT NULL,
    by       TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL
);
