-- Core tables: plain PostgreSQL. TimescaleDB extras live in timescale/ and run only
-- where the extension is present (see ARCHITECTURE.md).

-- Every accepted event, raw, for audit and replay. Idempotent on event_id; the event
-- time is part of the key because a hypertable's unique keys must hold it.
CREATE TABLE events (
    event_id     text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    type         text        NOT NULL,
    key          text,
    payload      jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, occurred_at)
);
CREATE INDEX events_type_idx ON events (type, occurred_at);

-- Input that failed the contract, or named something that never arrived.
CREATE TABLE rejected_events (
    id           bigserial   PRIMARY KEY,
    event_id     text,
    event_type   text,
    stage        text        NOT NULL,  -- decode | schema | semantic | unresolved | scope
    reason       text        NOT NULL,
    raw          text        NOT NULL,
    source       text        NOT NULL,  -- kafka | http
    rejected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejected_events_at_idx ON rejected_events (rejected_at);
CREATE UNIQUE INDEX rejected_events_once_idx ON rejected_events (event_id, stage, md5(raw)) WHERE event_id IS NOT NULL;

-- Valid events that name something not seen yet, retried when it arrives.
CREATE TABLE held_events (
    event_id     text        PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    type         text        NOT NULL,
    waiting_for  text        NOT NULL,  -- e.g. 'shift:SH-1'
    payload      jsonb       NOT NULL,
    raw          text        NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_events_waiting_idx ON held_events (waiting_for);
CREATE INDEX held_events_held_at_idx ON held_events (held_at);

CREATE TABLE commissioners (
    commissioner_id text PRIMARY KEY,
    name            text NOT NULL,
    kind            text,
    timezone        text NOT NULL DEFAULT 'Europe/London',
    registered_at   timestamptz NOT NULL
);

CREATE TABLE providers (
    provider_id   text PRIMARY KEY,
    name          text NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE carers (
    carer_id           text PRIMARY KEY,
    provider_id        text NOT NULL,
    ni_number          text,
    date_of_birth      date,
    competencies       text[] NOT NULL DEFAULT '{}',
    pay_pence_per_hour integer NOT NULL,
    registered_at      timestamptz NOT NULL
);
CREATE INDEX carers_provider_idx ON carers (provider_id);

CREATE TABLE packages (
    package_id        text PRIMARY KEY,
    commissioner_id   text NOT NULL,
    provider_id       text NOT NULL,
    mechanism         text NOT NULL,
    person_id         text NOT NULL,
    nhs_number        text NOT NULL,
    person_lat        double precision,
    person_lon        double precision,
    period_start      date NOT NULL,
    period_end        date NOT NULL,
    budget_pence      bigint NOT NULL,
    contingency_pence bigint NOT NULL DEFAULT 0,
    plan              jsonb NOT NULL,
    rates             jsonb NOT NULL,
    thresholds        jsonb NOT NULL DEFAULT '{}',
    planned_minutes_per_week numeric NOT NULL,
    approved_at       timestamptz NOT NULL
);
CREATE INDEX packages_commissioner_idx ON packages (commissioner_id);
CREATE INDEX packages_provider_idx ON packages (provider_id);

CREATE TABLE shifts (
    shift_id              text PRIMARY KEY,
    package_id            text NOT NULL,
    provider_id           text NOT NULL,
    starts_at             timestamptz NOT NULL,
    ends_at               timestamptz NOT NULL,
    service_type          text NOT NULL,
    carers_required       integer NOT NULL,
    carer_ids             text[] NOT NULL DEFAULT '{}',
    required_competencies text[] NOT NULL DEFAULT '{}',
    scheduled_at          timestamptz NOT NULL,       -- occurred_at of the version held (last writer wins)
    cancelled_by          text,
    cancel_reason         text,
    cancelled_at          timestamptz
);
CREATE INDEX shifts_package_starts_idx ON shifts (package_id, starts_at);
CREATE INDEX shifts_provider_starts_idx ON shifts (provider_id, starts_at);
CREATE INDEX shifts_starts_idx ON shifts (starts_at);

-- Each carer's clock-in and clock-out, as reported; attendance pairs are derived.
CREATE TABLE clock_events (
    event_id    text PRIMARY KEY,
    shift_id    text NOT NULL,
    carer_id    text NOT NULL,
    direction   text NOT NULL CHECK (direction IN ('in', 'out')),
    at          timestamptz NOT NULL,
    method      text NOT NULL,
    lat         double precision,
    lon         double precision,
    accuracy_m  double precision
);
CREATE INDEX clock_events_shift_idx ON clock_events (shift_id);
CREATE INDEX clock_events_carer_idx ON clock_events (carer_id, at);

CREATE TABLE visit_corrections (
    event_id     text PRIMARY KEY,
    shift_id     text NOT NULL,
    carer_id     text NOT NULL,
    clock_in_at  timestamptz NOT NULL,
    clock_out_at timestamptz NOT NULL,
    reason_code  text NOT NULL,
    corrected_by text NOT NULL,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX visit_corrections_shift_idx ON visit_corrections (shift_id);

-- The per-shift ledger, recomputed from the shift and its clock events whenever either
-- changes, so order and duplication of events cannot change it.
CREATE TABLE shift_ledger (
    shift_id                   text PRIMARY KEY,
    package_id                 text NOT NULL,
    provider_id                text NOT NULL,
    starts_at                  timestamptz NOT NULL,
    planned_seconds            bigint NOT NULL,
    scheduled_seconds          bigint NOT NULL,
    actual_seconds             bigint NOT NULL,
    payable_seconds            bigint NOT NULL,
    overrun_seconds            bigint NOT NULL,
    unverified_seconds         bigint NOT NULL,
    provider_cancelled_seconds bigint NOT NULL,
    day_seconds                bigint NOT NULL,
    night_seconds              bigint NOT NULL,
    weekend_seconds            bigint NOT NULL,
    bank_holiday_seconds       bigint NOT NULL,
    -- spend x 3600: sum of payable seconds x pence per hour, an exact integer
    rate_seconds               numeric NOT NULL,
    spend_pence                numeric(24, 6) NOT NULL,
    first_clock_in_at          timestamptz,
    open_attendances           integer NOT NULL DEFAULT 0,
    distinct_carers            integer NOT NULL DEFAULT 0,
    attendance                 jsonb NOT NULL DEFAULT '[]',
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shift_ledger_package_starts_idx ON shift_ledger (package_id, starts_at);

CREATE TABLE invoices (
    invoice_id   text PRIMARY KEY,
    package_id   text NOT NULL,
    provider_id  text NOT NULL,
    period_start date NOT NULL,
    period_end   date NOT NULL,
    total_pence  bigint NOT NULL,
    lines        jsonb NOT NULL,
    submitted_at timestamptz NOT NULL
);
CREATE INDEX invoices_package_idx ON invoices (package_id);

CREATE TABLE activities (
    event_id    text PRIMARY KEY,
    carer_id    text NOT NULL,
    provider_id text NOT NULL,
    package_id  text,
    kind        text NOT NULL,
    minutes     numeric NOT NULL,
    occurred_at timestamptz NOT NULL
);

-- time_bucket for plain PostgreSQL, so views and queries read the same on both paths.
CREATE OR REPLACE FUNCTION carewatch_time_bucket(bucket interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT date_bin(bucket, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00')
$$;

-- Daily per-package ledger (UTC days). With TimescaleDB this is a continuous aggregate
-- (timescale/ migrations); here a plain view with the same columns.
CREATE VIEW package_daily_ledger AS
SELECT package_id,
       carewatch_time_bucket(INTERVAL '1 day', starts_at) AS day,
       sum(planned_seconds)            AS planned_seconds,
       sum(scheduled_seconds)          AS scheduled_seconds,
       sum(actual_seconds)             AS actual_seconds,
       sum(payable_seconds)            AS payable_seconds,
       sum(overrun_seconds)            AS overrun_seconds,
       sum(unverified_seconds)         AS unverified_seconds,
       sum(provider_cancelled_seconds) AS provider_cancelled_seconds,
       sum(rate_seconds)               AS rate_seconds
FROM shift_ledger
GROUP BY package_id, carewatch_time_bucket(INTERVAL '1 day', starts_at);
