-- Issue 10, statements and effective pay: plain tables, correct on their own on both paths.
--
-- A statement sums its packages' figures over a window of local dates. Summing shift_ledger rows
-- for a commissioner's year is millions of rows, so each ledger and activity row is also counted
-- into per-package roll-ups by local day and by local month, kept by statement-level triggers in
-- the writer's transaction: a statement reads whole months from the month roll-up and the days at
-- either end from the day roll-up. The roll-ups are derived data: `carewatch_rebuild_rollups()`
-- recomputes them from the source tables.

-- The local date of a shift's start (its commissioner's zone), kept beside the ledger row so that
-- a row moving day (a rescheduled shift, a zone change) is taken off the day it was counted on.
ALTER TABLE shift_ledger ADD COLUMN IF NOT EXISTS local_date date;
-- Whether that date lies in its package's period (the budget's spend to date counts those rows).
ALTER TABLE shift_ledger ADD COLUMN IF NOT EXISTS in_period boolean;  -- nullable: the ledger writer stages rows without it
-- The local date of an activity's occurred_at: the zone of its package's commissioner, or the
-- default zone for an activity that names no package.
ALTER TABLE activities ADD COLUMN IF NOT EXISTS local_date date;

CREATE OR REPLACE FUNCTION carewatch_package_zone(package text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.timezone FROM packages p JOIN commissioners c USING (commissioner_id)
                     WHERE p.package_id = package), 'Europe/London')
$$;

CREATE OR REPLACE FUNCTION carewatch_ledger_local_date() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first date;
    last date;
BEGIN
    NEW.local_date := (NEW.starts_at AT TIME ZONE carewatch_package_zone(NEW.package_id))::date;
    SELECT period_start, period_end INTO first, last FROM packages WHERE package_id = NEW.package_id;
    NEW.in_period := coalesce(NEW.local_date BETWEEN first AND last, false);
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION carewatch_activity_local_date() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.local_date := (NEW.occurred_at AT TIME ZONE carewatch_package_zone(NEW.package_id))::date;
    RETURN NEW;
END $$;

CREATE TRIGGER shift_ledger_local_date BEFORE INSERT OR UPDATE ON shift_ledger
    FOR EACH ROW EXECUTE FUNCTION carewatch_ledger_local_date();
CREATE TRIGGER activities_local_date BEFORE INSERT OR UPDATE ON activities
    FOR EACH ROW EXECUTE FUNCTION carewatch_activity_local_date();

UPDATE shift_ledger SET in_period = in_period;  -- the BEFORE trigger sets local_date and in_period
UPDATE activities SET local_date = (occurred_at AT TIME ZONE carewatch_package_zone(package_id))::date;

-- Plan weekly spend x 60 (DOMAIN.md "Budget"), an exact integer: minutes_per_week x carers x the
-- line's day rate, summed; a line without a day rate costs nothing (domain/money.py rate_for).
CREATE OR REPLACE FUNCTION carewatch_plan_weekly_rate_minutes(plan jsonb, rates jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum((line->>'minutes_per_week')::numeric * coalesce((line->>'carers')::numeric, 1)
                        * coalesce((SELECT (r->>'pence_per_hour')::numeric FROM jsonb_array_elements(rates) r
                                    WHERE r->>'service_type' = line->>'service_type' AND r->>'band' = 'day'
                                    LIMIT 1), 0)), 0)
    FROM jsonb_array_elements(plan) line
$$;
ALTER TABLE packages ADD COLUMN IF NOT EXISTS plan_weekly_rate_minutes numeric
    GENERATED ALWAYS AS (carewatch_plan_weekly_rate_minutes(plan, rates)) STORED;

-- One row per package and local day (and per package and month, `day` its first day).
CREATE TABLE package_day_ledger (
    package_id         text    NOT NULL,
    day                date    NOT NULL,
    actual_seconds     bigint  NOT NULL DEFAULT 0,
    payable_seconds    bigint  NOT NULL DEFAULT 0,
    unverified_seconds bigint  NOT NULL DEFAULT 0,
    rate_seconds       numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (package_id, day)
);
CREATE TABLE package_month_ledger (LIKE package_day_ledger INCLUDING ALL);

-- Each package's spend (x 3600) on shifts starting within its period: its budget's spend to date.
-- A package's new period rebuilds all its shifts' ledgers, which moves each row in or out.
CREATE TABLE package_period_ledger (
    package_id   text    PRIMARY KEY,
    rate_seconds numeric NOT NULL DEFAULT 0
);

-- Non-direct minutes by provider, package ('' for none) and local day / month.
CREATE TABLE activity_day (
    provider_id text    NOT NULL,
    package_id  text    NOT NULL,
    day         date    NOT NULL,
    minutes     numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, package_id, day)
);
CREATE TABLE activity_month (LIKE activity_day INCLUDING ALL);
-- A window's rows of every package at once (statements over many packages read by day).
CREATE INDEX package_day_ledger_day_idx ON package_day_ledger (day);
CREATE INDEX package_month_ledger_day_idx ON package_month_ledger (day);
CREATE INDEX activity_day_day_idx ON activity_day (day);
CREATE INDEX activity_month_day_idx ON activity_month (day);
CREATE INDEX activity_day_package_idx ON activity_day (package_id, day);
CREATE INDEX activity_month_package_idx ON activity_month (package_id, day);

-- Rows are added in key order in one statement each, so two writers never wait on each other
-- in opposite orders.
-- The statement's rows as a query with their sign: +1 for new rows, -1 for old ones (an update is both).
CREATE OR REPLACE FUNCTION carewatch_signed_changes(op text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE op
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, n.* FROM new_rows n'
        WHEN 'DELETE' THEN 'SELECT -1 AS sign, o.* FROM old_rows o'
        ELSE 'SELECT 1 AS sign, n.* FROM new_rows n UNION ALL SELECT -1, o.* FROM old_rows o' END
$$;

CREATE OR REPLACE FUNCTION carewatch_roll_up_ledgers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := carewatch_signed_changes(TG_OP);
    target text;
    bucket text;
BEGIN
    FOREACH target IN ARRAY ARRAY['package_day_ledger', 'package_month_ledger'] LOOP
        bucket := CASE target WHEN 'package_day_ledger' THEN 'local_date'
                  ELSE 'date_trunc(''month'', local_date)::date' END;
        EXECUTE format($sql$
            INSERT INTO %1$I AS t (package_id, day, actual_seconds, payable_seconds, unverified_seconds,
                                   rate_seconds)
            SELECT package_id, %2$s, sum(sign * actual_seconds), sum(sign * payable_seconds),
                   sum(sign * unverified_seconds), sum(sign * rate_seconds)
            FROM (%3$s) c WHERE local_date IS NOT NULL
            GROUP BY 1, 2
            HAVING sum(sign * actual_seconds) <> 0 OR sum(sign * payable_seconds) <> 0
                OR sum(sign * unverified_seconds) <> 0 OR sum(sign * rate_seconds) <> 0
            ORDER BY 1, 2
            ON CONFLICT (package_id, day) DO UPDATE SET
                actual_seconds = t.actual_seconds + EXCLUDED.actual_seconds,
                payable_seconds = t.payable_seconds + EXCLUDED.payable_seconds,
                unverified_seconds = t.unverified_seconds + EXCLUDED.unverified_seconds,
                rate_seconds = t.rate_seconds + EXCLUDED.rate_seconds$sql$, target, bucket, changes);
    END LOOP;
    EXECUTE format($sql$
        INSERT INTO package_period_ledger AS t (package_id, rate_seconds)
        SELECT package_id, sum(sign * rate_seconds) FROM (%s) c WHERE in_period
        GROUP BY 1 HAVING sum(sign * rate_seconds) <> 0 ORDER BY 1
        ON CONFLICT (package_id) DO UPDATE SET rate_seconds = t.rate_seconds + EXCLUDED.rate_seconds$sql$, changes);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION carewatch_roll_up_activities() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changes text := carewatch_signed_changes(TG_OP);
    target text;
    bucket text;
BEGIN
    FOREACH target IN ARRAY ARRAY['activity_day', 'activity_month'] LOOP
        bucket := CASE target WHEN 'activity_day' THEN 'local_date'
                  ELSE 'date_trunc(''month'', local_date)::date' END;
        EXECUTE format($sql$
            INSERT INTO %1$I AS t (provider_id, package_id, day, minutes)
            SELECT provider_id, coalesce(package_id, ''), %2$s, sum(sign * minutes)
            FROM (%3$s) c WHERE local_date IS NOT NULL
            GROUP BY 1, 2, 3 HAVING sum(sign * minutes) <> 0
            ORDER BY 1, 2, 3
            ON CONFLICT (provider_id, package_id, day) DO UPDATE SET minutes = t.minutes + EXCLUDED.minutes
            $sql$, target, bucket, changes);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER shift_ledger_roll_up_insert AFTER INSERT ON shift_ledger REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_ledgers();
CREATE TRIGGER shift_ledger_roll_up_update AFTER UPDATE ON shift_ledger
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_ledgers();
CREATE TRIGGER shift_ledger_roll_up_delete AFTER DELETE ON shift_ledger REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_ledgers();
CREATE TRIGGER activities_roll_up_insert AFTER INSERT ON activities REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_activities();
CREATE TRIGGER activities_roll_up_update AFTER UPDATE ON activities
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_activities();
CREATE TRIGGER activities_roll_up_delete AFTER DELETE ON activities REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION carewatch_roll_up_activities();

-- Recompute every roll-up from the source tables (after a bulk load with triggers off, or to check).
CREATE OR REPLACE FUNCTION carewatch_rebuild_rollups() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE package_day_ledger, package_month_ledger, package_period_ledger, activity_day, activity_month;
    INSERT INTO package_day_ledger
    SELECT package_id, local_date, sum(actual_seconds), sum(payable_seconds), sum(unverified_seconds),
           sum(rate_seconds)
    FROM shift_ledger WHERE local_date IS NOT NULL GROUP BY 1, 2;
    INSERT INTO package_month_ledger
    SELECT package_id, date_trunc('month', day)::date, sum(actual_seconds), sum(payable_seconds),
           sum(unverified_seconds), sum(rate_seconds)
    FROM package_day_ledger GROUP BY 1, 2;
    INSERT INTO package_period_ledger
    SELECT package_id, sum(rate_seconds) FROM shift_ledger WHERE in_period GROUP BY 1;
    INSERT INTO activity_day
    SELECT provider_id, coalesce(package_id, ''), local_date, sum(minutes)
    FROM activities WHERE local_date IS NOT NULL GROUP BY 1, 2, 3;
    INSERT INTO activity_month
    SELECT provider_id, package_id, date_trunc('month', day)::date, sum(minutes) FROM activity_day GROUP BY 1, 2, 3;
END $$;
SELECT carewatch_rebuild_rollups();

-- A package's ledger sums over the local dates [first, stop): whole months from the month roll-up,
-- the days before the first whole month and after the last from the day roll-up. One SELECT, so the
-- planner inlines it into the caller's query.
CREATE OR REPLACE FUNCTION carewatch_month_after(d date) RETURNS date LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN extract(day FROM d) = 1 THEN d ELSE (date_trunc('month', d) + INTERVAL '1 month')::date END
$$;

CREATE OR REPLACE FUNCTION carewatch_ledger_sums(package text, first date, stop date)
RETURNS TABLE (actual_seconds bigint, payable_seconds bigint, unverified_seconds bigint, rate_seconds numeric)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(x.actual_seconds), 0)::bigint, coalesce(sum(x.payable_seconds), 0)::bigint,
           coalesce(sum(x.unverified_seconds), 0)::bigint, coalesce(sum(x.rate_seconds), 0)
    FROM (
        SELECT m.actual_seconds, m.payable_seconds, m.unverified_seconds, m.rate_seconds
        FROM package_month_ledger m
        WHERE m.package_id = package AND m.day >= carewatch_month_after(first)
          AND m.day < date_trunc('month', stop)::date
        UNION ALL
        SELECT d.actual_seconds, d.payable_seconds, d.unverified_seconds, d.rate_seconds
        FROM package_day_ledger d
        WHERE d.package_id = package AND d.day >= first
          AND d.day < CASE WHEN carewatch_month_after(first) < date_trunc('month', stop)::date
                           THEN carewatch_month_after(first) ELSE stop END
        UNION ALL
        SELECT d.actual_seconds, d.payable_seconds, d.unverified_seconds, d.rate_seconds
        FROM package_day_ledger d
        WHERE d.package_id = package AND d.day < stop
          AND d.day >= CASE WHEN carewatch_month_after(first) < date_trunc('month', stop)::date
                            THEN date_trunc('month', stop)::date ELSE stop END
    ) x
$$;

-- Non-direct minutes over the local dates [first, stop) logged by `provider` (NULL: any) against
-- `package` ('' for none), read the same way.
CREATE OR REPLACE FUNCTION carewatch_activity_minutes(provider text, package text, first date, stop date)
RETURNS TABLE (minutes numeric) LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(x.minutes), 0) FROM (
        SELECT m.minutes FROM activity_month m
        WHERE m.package_id = package AND (provider IS NULL OR m.provider_id = provider)
          AND m.day >= carewatch_month_after(first) AND m.day < date_trunc('month', stop)::date
        UNION ALL
        SELECT d.minutes FROM activity_day d
        WHERE d.package_id = package AND (provider IS NULL OR d.provider_id = provider) AND d.day >= first
          AND d.day < CASE WHEN carewatch_month_after(first) < date_trunc('month', stop)::date
                           THEN carewatch_month_after(first) ELSE stop END
        UNION ALL
        SELECT d.minutes FROM activity_day d
        WHERE d.package_id = package AND (provider IS NULL OR d.provider_id = provider) AND d.day < stop
          AND d.day >= CASE WHEN carewatch_month_after(first) < date_trunc('month', stop)::date
                            THEN date_trunc('month', stop)::date ELSE stop END
    ) x
$$;

-- Effective pay (DOMAIN.md "Non-direct care and effective pay"): each carer's direct and non-direct
-- time per ISO week (Monday's local date), recomputed from the stored facts whenever an attendance
-- or activity of theirs in that week arrives, so replays and arrival order give the same rows.
CREATE TABLE carer_week_time (
    carer_id           text    NOT NULL,
    week_start         date    NOT NULL,
    direct_seconds     bigint  NOT NULL,
    non_direct_minutes numeric NOT NULL,
    PRIMARY KEY (carer_id, week_start)
);
CREATE INDEX IF NOT EXISTS activities_carer_day_idx ON activities (carer_id, local_date);
CREATE INDEX IF NOT EXISTS invoices_period_idx ON invoices (period_start);
