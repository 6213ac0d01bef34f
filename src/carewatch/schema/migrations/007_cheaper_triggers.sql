-- Issue 12, PostgreSQL's side of the batch path: the same results as migrations 005 and 006, for less
-- of PostgreSQL's CPU per event (docs/throughput.md "PostgreSQL"). Nothing here changes a stored value.

-- A package's plan weekly spend x 60 (the stored generated column packages.plan_weekly_rate_minutes).
-- As a SQL function with a FROM it could not be inlined, so every package written re-planned its body;
-- here the same sum in PL/pgSQL with expressions only (no query to start for each package): each plan
-- line's minutes x carers (1 if absent) x the first day rate listed for its service type (0 if none), a
-- line with no minutes counting nothing, as sum() leaves out NULL products. Exact numeric, same scale.
CREATE OR REPLACE FUNCTION carewatch_plan_weekly_rate_minutes(plan jsonb, rates jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    total numeric;
    line jsonb;
    rate jsonb;
    pence numeric;
    product numeric;
BEGIN
    FOR i IN 0 .. jsonb_array_length(plan) - 1 LOOP
        line := plan -> i;
        pence := NULL;
        FOR j IN 0 .. jsonb_array_length(rates) - 1 LOOP
            rate := rates -> j;
            IF rate ->> 'service_type' = line ->> 'service_type' AND rate ->> 'band' = 'day' THEN
                pence := (rate ->> 'pence_per_hour')::numeric;
                EXIT;
            END IF;
        END LOOP;
        product := (line ->> 'minutes_per_week')::numeric * coalesce((line ->> 'carers')::numeric, 1)
                   * coalesce(pence, 0);
        IF product IS NOT NULL THEN
            total := coalesce(total + product, product);
        END IF;
    END LOOP;
    RETURN coalesce(total, 0);
END $$;

-- clock_events_shift_idx (shift_id) is a prefix of clock_events_shift_direction_idx (shift_id, direction,
-- carer_id, at), which serves the same lookups by shift; one index less to write for every clock event.
DROP INDEX IF EXISTS clock_events_shift_idx;

-- The local date of an instant in a zone (the default zone for none), and whether it lies in a period:
-- what migration 006's row trigger computed from the package and its commissioner. One SELECT without
-- a FROM, so the planner inlines it into the statement that calls it, which joins the packages and
-- commissioners of all its rows at once.
CREATE OR REPLACE FUNCTION carewatch_ledger_dates(starts timestamptz, zone text, first date, last date)
RETURNS TABLE (local_date date, in_period boolean) LANGUAGE sql IMMUTABLE AS $$
    SELECT d, coalesce(d BETWEEN first AND last, false)
    FROM (SELECT (starts AT TIME ZONE coalesce(zone, 'Europe/London'))::date) x(d)
$$;

-- shift_ledger.local_date and in_period were set row by row by a BEFORE trigger (two queries a row, and
-- twice for a row an upsert updates: once as the proposed insert, once as the update), which cost more
-- than the upsert itself. They are now set for a whole statement after it: the ledger writer supplies
-- them (store/ledgers.py), and the statement-level trigger below corrects any row whose values are not
-- those of carewatch_ledger_dates for its package (a writer that leaves them out, or a package whose period or zone
-- has changed since), by an UPDATE whose own trigger moves the roll-ups' amounts. The roll-ups end the
-- same either way, since they only ever add the signed rows.
DROP TRIGGER shift_ledger_local_date ON shift_ledger;
DROP FUNCTION carewatch_ledger_local_date();

-- One pass over the statement's transition rows for the three roll-ups (it was one pass each), then
-- the correction of local_date and in_period. Rows are still added in key order, one table after the
-- other in one fixed order, so two writers never wait on each other in opposite orders.
CREATE OR REPLACE FUNCTION carewatch_roll_up_ledgers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wrong bigint;
BEGIN
    -- An upsert fires the INSERT and the UPDATE triggers both, often one of them for no rows.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT FROM new_rows) THEN
        RETURN NULL;
    END IF;
    EXECUTE format($sql$
        WITH c AS (
            SELECT package_id, local_date, in_period, sum(sign * actual_seconds) AS actual_seconds,
                   sum(sign * payable_seconds) AS payable_seconds, sum(sign * unverified_seconds) AS unverified_seconds,
                   sum(sign * rate_seconds) AS rate_seconds
            FROM (%s) x WHERE local_date IS NOT NULL OR in_period
            GROUP BY 1, 2, 3
        ), day AS (
            INSERT INTO package_day_ledger AS t (package_id, day, actual_seconds, payable_seconds,
                                                 unverified_seconds, rate_seconds)
            SELECT package_id, local_date, sum(actual_seconds), sum(payable_seconds), sum(unverified_seconds),
                   sum(rate_seconds)
            FROM c WHERE local_date IS NOT NULL
            GROUP BY 1, 2
            HAVING sum(actual_seconds) <> 0 OR sum(payable_seconds) <> 0 OR sum(unverified_seconds) <> 0
                OR sum(rate_seconds) <> 0
            ORDER BY 1, 2
            ON CONFLICT (package_id, day) DO UPDATE SET
                actual_seconds = t.actual_seconds + EXCLUDED.actual_seconds,
                payable_seconds = t.payable_seconds + EXCLUDED.payable_seconds,
                unverified_seconds = t.unverified_seconds + EXCLUDED.unverified_seconds,
                rate_seconds = t.rate_seconds + EXCLUDED.rate_seconds
        ), month AS (
            INSERT INTO package_month_ledger AS t (package_id, day, actual_seconds, payable_seconds,
                                                   unverified_seconds, rate_seconds)
            SELECT package_id, date_trunc('month', local_date)::date, sum(actual_seconds), sum(payable_seconds),
                   sum(unverified_seconds), sum(rate_seconds)
            FROM c WHERE local_date IS NOT NULL
            GROUP BY 1, 2
            HAVING sum(actual_seconds) <> 0 OR sum(payable_seconds) <> 0 OR sum(unverified_seconds) <> 0
                OR sum(rate_seconds) <> 0
            ORDER BY 1, 2
            ON CONFLICT (package_id, day) DO UPDATE SET
                actual_seconds = t.actual_seconds + EXCLUDED.actual_seconds,
                payable_seconds = t.payable_seconds + EXCLUDED.payable_seconds,
                unverified_seconds = t.unverified_seconds + EXCLUDED.unverified_seconds,
                rate_seconds = t.rate_seconds + EXCLUDED.rate_seconds
        )
        INSERT INTO package_period_ledger AS t (package_id, rate_seconds)
        SELECT package_id, sum(rate_seconds) FROM c WHERE in_period
        GROUP BY 1 HAVING sum(rate_seconds) <> 0 ORDER BY 1
        ON CONFLICT (package_id) DO UPDATE SET rate_seconds = t.rate_seconds + EXCLUDED.rate_seconds$sql$,
        carewatch_signed_changes(TG_OP));
    -- Rows whose local date or period flag is not what their package says now. The UPDATE fires this
    -- trigger again, which moves their amounts and finds nothing more to correct (a statement-level
    -- trigger fires even for no rows, so the UPDATE runs only when there is something to correct).
    IF TG_OP = 'DELETE' THEN  -- (old_rows only: a separate IF, as new_rows does not exist here)
        RETURN NULL;
    END IF;
    -- Counted first (a plan over all the rows, not an EXISTS's row by row), as the usual writer has
    -- supplied every value and there is nothing to correct.
    SELECT count(*) INTO wrong
    FROM new_rows n LEFT JOIN packages p ON p.package_id = n.package_id
    LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
    CROSS JOIN LATERAL carewatch_ledger_dates(n.starts_at, c.timezone, p.period_start, p.period_end) d
    WHERE n.local_date IS DISTINCT FROM d.local_date OR n.in_period IS DISTINCT FROM d.in_period;
    IF wrong > 0 THEN
        UPDATE shift_ledger l SET local_date = f.local_date, in_period = f.in_period
        FROM (SELECT n.shift_id, d.local_date, d.in_period
              FROM new_rows n LEFT JOIN packages p ON p.package_id = n.package_id
              LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
              CROSS JOIN LATERAL carewatch_ledger_dates(n.starts_at, c.timezone, p.period_start, p.period_end) d
              WHERE n.local_date IS DISTINCT FROM d.local_date OR n.in_period IS DISTINCT FROM d.in_period) f
        WHERE l.shift_id = f.shift_id;
    END IF;
    RETURN NULL;
END $$;

-- An activity's local date: one lookup with a plan kept for the session, instead of calling
-- carewatch_package_zone (a SQL function run afresh for every row). A package or commissioner not
-- stored (or no package) gives the default zone, as carewatch_package_zone does.
CREATE OR REPLACE FUNCTION carewatch_activity_local_date() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tz text;
BEGIN
    IF NEW.package_id IS NOT NULL THEN
        SELECT c.timezone INTO tz
        FROM packages p JOIN commissioners c ON c.commissioner_id = p.commissioner_id
        WHERE p.package_id = NEW.package_id;
    END IF;
    NEW.local_date := (NEW.occurred_at AT TIME ZONE coalesce(tz, 'Europe/London'))::date;
    RETURN NEW;
END $$;
