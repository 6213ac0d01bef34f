-- A carer's attendance across shifts (DOUBLE_BOOKED_CARER by event time) reads their corrections
-- as well as their clock events (clock_events_carer_idx) by carer and time.
CREATE INDEX IF NOT EXISTS visit_corrections_carer_idx ON visit_corrections (carer_id, clock_in_at);
