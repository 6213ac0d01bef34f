-- Alerts and their history (DOMAIN.md "Alerts"), commissioner threshold overrides, and the
-- indexes the deadline sweeps need. Plain PostgreSQL on both paths: the partial unique index
-- that keeps one open alert per (kind, subject) cannot live on a hypertable, and alerts are few.

CREATE TABLE alerts (
    id                  bigserial   PRIMARY KEY,
    kind                text        NOT NULL,
    severity            text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status              text        NOT NULL DEFAULT 'open'
                                    CHECK (status IN ('open', 'acknowledged', 'resolved', 'auto_resolved')),
    subject_type        text        NOT NULL CHECK (subject_type IN ('shift', 'carer', 'package', 'provider')),
    subject_id          text        NOT NULL,
    raised_at           timestamptz NOT NULL,  -- processing time of the raise
    resolved_at         timestamptz,
    updated_at          timestamptz NOT NULL,  -- last status change: what `since` catches up on
    message             text        NOT NULL,
    package_id          text,
    shift_id            text,
    carer_id            text,
    provider_id         text,
    commissioner_id     text,
    caused_by_late_data boolean     NOT NULL DEFAULT false,
    details             jsonb       NOT NULL DEFAULT '{}'
);
-- At most one open (or acknowledged) alert per kind and subject; raising is INSERT .. ON CONFLICT
-- DO NOTHING against this index, so two schedulers or workers never raise the same alert twice.
CREATE UNIQUE INDEX alerts_one_open_idx ON alerts (kind, subject_type, subject_id)
    WHERE status IN ('open', 'acknowledged');
CREATE INDEX alerts_subject_idx ON alerts (subject_id, kind);
CREATE INDEX alerts_active_idx ON alerts (kind) WHERE status IN ('open', 'acknowledged');
CREATE INDEX alerts_updated_idx ON alerts (updated_at, id);
CREATE INDEX alerts_raised_idx ON alerts (raised_at, id);
CREATE INDEX alerts_package_idx ON alerts (package_id, raised_at);
CREATE INDEX alerts_provider_idx ON alerts (provider_id, raised_at);
CREATE INDEX alerts_commissioner_idx ON alerts (commissioner_id, raised_at);

-- Every status change: who, when and why.
CREATE TABLE alert_history (
    id          bigserial   PRIMARY KEY,
    alert_id    bigint      NOT NULL REFERENCES alerts (id),
    status      text        NOT NULL,
    changed_at  timestamptz NOT NULL,
    changed_by  text        NOT NULL,
    note        text
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, id);

-- A commissioner's overrides of the global alert thresholds (names as in domain/thresholds.py).
CREATE TABLE commissioner_thresholds (
    commissioner_id text        PRIMARY KEY,
    thresholds      jsonb       NOT NULL DEFAULT '{}',
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One threshold with its precedence (package, then commissioner, then the global default), in SQL
-- so that the sweeps filter by each package's own deadline. Only non-negative numbers count,
-- as in domain/thresholds.py: a malformed override never switches an alert off.
CREATE OR REPLACE FUNCTION carewatch_threshold(package jsonb, commissioner jsonb, name text, fallback float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        CASE WHEN jsonb_typeof(package -> name) = 'number' AND (package ->> name)::float8 >= 0
             THEN (package ->> name)::float8 END,
        CASE WHEN jsonb_typeof(commissioner -> name) = 'number' AND (commissioner ->> name)::float8 >= 0
             THEN (commissioner ->> name)::float8 END,
        fallback)
$$;

-- The sweeps ask "has anyone clocked in on this shift" and "is this carer still clocked in".
CREATE INDEX clock_events_shift_direction_idx ON clock_events (shift_id, direction, carer_id, at);
CREATE INDEX shifts_ends_idx ON shifts (ends_at);
