-- Issue "Nothing lost, nothing wrong".

-- A carer's attendance across shifts (DOUBLE_BOOKED_CARER by event time) reads their corrections
-- as well as their clock events (clock_events_carer_idx) by carer and time.
CREATE INDEX IF NOT EXISTS visit_corrections_carer_idx ON visit_corrections (carer_id, clock_in_at);

-- A shift belongs to its first announcement by event time (occurred_at, then event id), whatever
-- order the announcements arrive in: kept beside scheduled_at, which is the latest version's.
-- NULL (a row written by hand) means unknown: such an owner is never taken over.
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS announced_at timestamptz;
ALTER TABLE shifts ADD COLUMN IF NOT EXISTS announced_by text NOT NULL DEFAULT '';
UPDATE shifts SET announced_at = scheduled_at WHERE announced_at IS NULL;
