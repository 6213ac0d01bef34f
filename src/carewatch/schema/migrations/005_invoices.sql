-- Issue 10, purchase to pay: every version of an invoice, the stored three-way match, budget checks,
-- graded alerts (a change of level kept in history), invoice subjects, and who each alert reaches.
-- Plain PostgreSQL on both paths: these tables are small and keyed, nothing here needs TimescaleDB.

-- Every version of every invoice (DOMAIN.md "Invoices over time"); `invoices` keeps the latest by
-- (submitted_at, event_id), so an older version arriving late never replaces a newer one.
CREATE TABLE invoice_versions (
    invoice_id   text        NOT NULL,
    event_id     text        NOT NULL,
    package_id   text        NOT NULL,
    provider_id  text        NOT NULL,
    period_start date        NOT NULL,
    period_end   date        NOT NULL,
    total_pence  bigint      NOT NULL,
    lines        jsonb       NOT NULL,
    submitted_at timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, event_id)
);
ALTER TABLE invoices ADD COLUMN event_id text NOT NULL DEFAULT '';
INSERT INTO invoice_versions (invoice_id, event_id, package_id, provider_id, period_start, period_end, total_pence,
                              lines, submitted_at)
SELECT invoice_id, event_id, package_id, provider_id, period_start, period_end, total_pence, lines, submitted_at
FROM invoices ON CONFLICT DO NOTHING;

-- The latest version's match, written whenever the invoice or the delivery behind it changes; null
-- until first matched. Lists filter by status and the statements sum matched_pence.
ALTER TABLE invoices ADD COLUMN status          text CHECK (status IN ('MATCHED', 'DISPUTED'));
ALTER TABLE invoices ADD COLUMN ordered_pence   bigint;
ALTER TABLE invoices ADD COLUMN delivered_pence bigint;
ALTER TABLE invoices ADD COLUMN matched_pence   bigint;
ALTER TABLE invoices ADD COLUMN matched_at      timestamptz;
CREATE INDEX invoices_package_period_idx ON invoices (package_id, period_start);
CREATE INDEX invoices_provider_period_idx ON invoices (provider_id, period_start);
CREATE INDEX invoices_period_idx ON invoices (period_start, invoice_id);

-- When each package's budget was last judged (BUDGET_AT_RISK), so that the scheduler's daily check
-- only visits the packages no batch has judged for a day.
CREATE TABLE budget_checks (
    package_id     text        PRIMARY KEY,
    level          text,                      -- warning | critical | NULL (within budget - contingency)
    forecast_pence numeric     NOT NULL,
    checked_at     timestamptz NOT NULL
);
CREATE INDEX budget_checks_at_idx ON budget_checks (checked_at);

-- INVOICE_DISPUTED's subject is the invoice.
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_subject_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_subject_type_check
    CHECK (subject_type IN ('shift', 'carer', 'package', 'provider', 'invoice'));

-- A change of level (BUDGET_AT_RISK warning <-> critical) is a history entry with the new severity.
ALTER TABLE alert_history ADD COLUMN severity text;

-- Who an alert reaches (security/roles.Viewer.may_see): the commissioners and providers involved.
-- A carer's alert reaches the commissioners of the packages they attended; a provider's alert those
-- of its packages; every other alert its own package's commissioner and provider.
ALTER TABLE alerts ADD COLUMN commissioner_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE alerts ADD COLUMN provider_ids     text[] NOT NULL DEFAULT '{}';
UPDATE alerts SET commissioner_ids = array_remove(ARRAY[commissioner_id], NULL),
                  provider_ids = array_remove(ARRAY[provider_id], NULL);
CREATE INDEX alerts_commissioner_ids_idx ON alerts USING gin (commissioner_ids);
CREATE INDEX alerts_provider_ids_idx ON alerts USING gin (provider_ids);

-- Whatever writes an alert (the repository, a sweep, a hand-written row), its own commissioner and
-- provider are always among those it reaches.
CREATE OR REPLACE FUNCTION carewatch_alert_parties() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.commissioner_id IS NOT NULL AND NOT (NEW.commissioner_id = ANY(NEW.commissioner_ids)) THEN
        NEW.commissioner_ids := NEW.commissioner_ids || NEW.commissioner_id;
    END IF;
    IF NEW.provider_id IS NOT NULL AND NOT (NEW.provider_id = ANY(NEW.provider_ids)) THEN
        NEW.provider_ids := NEW.provider_ids || NEW.provider_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alerts_parties BEFORE INSERT OR UPDATE OF commissioner_id, provider_id, commissioner_ids, provider_ids
    ON alerts FOR EACH ROW EXECUTE FUNCTION carewatch_alert_parties();
