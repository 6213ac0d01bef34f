-- Judgements that need facts from several partitions wait until those facts have had time to arrive
-- (docs/domain-rules.md "Settling"). A clock-in by a carer not registered with the shift's provider
-- waits for the registration (its partition may be behind) before UNKNOWN_CARER is raised; a carer
-- whose week of direct and non-direct time moved waits for the rest of the week's facts before
-- PAY_BELOW_MINIMUM is decided. The worker writes a row; the scheduler's fast sweep decides the rows
-- older than CAREWATCH_SETTLE_SECONDS by the processing clock, and deletes them. `changes` counts the
-- writes to a row, so a sweep deletes (and acts on) only the row it read: a change that lands while it
-- decides leaves the row for the next tick.
CREATE TABLE IF NOT EXISTS settling (
    kind text NOT NULL CHECK (kind IN ('UNKNOWN_CARER', 'PAY_BELOW_MINIMUM')),
    carer_id text NOT NULL,
    shift_id text NOT NULL DEFAULT '',  -- '' for a carer-wide judgement (pay)
    provider_id text NOT NULL DEFAULT '',  -- UNKNOWN_CARER: the shift's provider
    since timestamptz NOT NULL,  -- processing time of the first change not yet judged
    changes integer NOT NULL DEFAULT 1,
    PRIMARY KEY (kind, carer_id, shift_id)
);
CREATE INDEX IF NOT EXISTS settling_since ON settling (since);
