-- A missed call that got no text stays on the dashboard's home page until someone calls the
-- caller back (or says they did): when, and who.
ALTER TABLE calls ADD COLUMN called_back_ms INTEGER;
ALTER TABLE calls ADD COLUMN called_back_by TEXT;
