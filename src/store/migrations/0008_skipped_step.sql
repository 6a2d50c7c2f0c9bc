-- A call the policy chose not to text has its own journal step, 'skipped', where it was a
-- 'policy' row whose detail began "no text" (doctor --watch read the sentence to tell them apart).
UPDATE journal SET step = 'skipped' WHERE step = 'policy' AND detail LIKE 'no text%';
