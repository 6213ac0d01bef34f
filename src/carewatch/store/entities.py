"""Writing accepted care events into their entity tables: bulk, idempotent, last writer wins.

Each upsert keeps the version with the latest occurred_at, so the final rows do not depend
on the order events arrive in; inserts of facts (clock events, corrections, activities)
are keyed by event_id and ignore repeats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg import sql as psql

from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.schema.events import CareEvent, parse_instant
from carewatch.store.staging import stage_rows

_COMMISSIONER = """
INSERT INTO commissioners (commissioner_id, name, kind, timezone, registered_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (commissioner_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
    timezone = EXCLUDED.timezone, registered_at = EXCLUDED.registered_at
WHERE commissioners.registered_at < EXCLUDED.registered_at"""

_PROVIDER = """
INSERT INTO providers (provider_id, name, registered_at) VALUES (%s, %s, %s)
ON CONFLICT (provider_id) DO UPDATE SET name = EXCLUDED.name, registered_at = EXCLUDED.registered_at
WHERE providers.registered_at < EXCLUDED.registered_at"""

_CARER = """
INSERT INTO carers (carer_id, provider_id, ni_number, date_of_birth, competencies, pay_pence_per_hour,
                    registered_at)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (carer_id) DO UPDATE SET provider_id = EXCLUDED.provider_id, ni_number = EXCLUDED.ni_number,
    date_of_birth = EXCLUDED.date_of_birth, competencies = EXCLUDED.competencies,
    pay_pence_per_hour = EXCLUDED.pay_pence_per_hour, registered_at = EXCLUDED.registered_at
WHERE carers.registered_at < EXCLUDED.registered_at"""

_PACKAGE = """
INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id, nhs_number,
                      person_lat, person_lon, period_start, period_end, budget_pence, contingency_pence,
                      plan, rates, thresholds, planned_minutes_per_week, approved_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s)
ON CONFLICT (package_id) DO UPDATE SET commissioner_id = EXCLUDED.commissioner_id,
    provider_id = EXCLUDED.provider_id, mechanism = EXCLUDED.mechanism, person_id = EXCLUDED.person_id,
    nhs_number = EXCLUDED.nhs_number, person_lat = EXCLUDED.person_lat, person_lon = EXCLUDED.person_lon,
    period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
    budget_pence = EXCLUDED.budget_pence, contingency_pence = EXCLUDED.contingency_pence,
    plan = EXCLUDED.plan, rates = EXCLUDED.rates, thresholds = EXCLUDED.thresholds,
    planned_minutes_per_week = EXCLUDED.planned_minutes_per_week, approved_at = EXCLUDED.approved_at
WHERE packages.approved_at < EXCLUDED.approved_at"""

_SHIFT_COLUMNS = ("shift_id", "package_id", "provider_id", "starts_at", "ends_at", "service_type", "carers_required",
                  "carer_ids", "required_competencies", "scheduled_at", "announced_at", "announced_by")
_SCHEDULED_AT = _SHIFT_COLUMNS.index("scheduled_at")

# The batch's latest version of each shift, staged by COPY (staged_shifts), merged in one statement.
_SHIFT = """
INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at, service_type, carers_required,
                    carer_ids, required_competencies, scheduled_at, announced_at, announced_by)
SELECT shift_id, package_id, provider_id, starts_at, ends_at, service_type, carers_required,
       carer_ids, required_competencies, scheduled_at, announced_at, announced_by FROM staged_shifts
ON CONFLICT (shift_id) DO UPDATE SET package_id = EXCLUDED.package_id, provider_id = EXCLUDED.provider_id,
    starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, service_type = EXCLUDED.service_type,
    carers_required = EXCLUDED.carers_required, carer_ids = EXCLUDED.carer_ids,
    required_competencies = EXCLUDED.required_competencies, scheduled_at = EXCLUDED.scheduled_at
WHERE shifts.scheduled_at < EXCLUDED.scheduled_at"""

# The first announcement by event time stays the shift's (domain/ownership.py), whichever arrived first.
_ANNOUNCED = """
UPDATE shifts s SET announced_at = a.at, announced_by = a.by
FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS a(shift_id, at, by)
WHERE s.shift_id = a.shift_id AND (a.at, a.by) < (s.announced_at, s.announced_by)"""

# A cancellation is its own fact beside the schedule: the latest cancellation wins, and a
# later reschedule does not undo it (only an explicit new shift would).
_CANCEL = """
UPDATE shifts SET cancelled_by = %s, cancel_reason = %s, cancelled_at = %s
WHERE shift_id = %s AND (cancelled_at IS NULL OR cancelled_at < %s)"""

_CLOCK = """
INSERT INTO clock_events (event_id, shift_id, carer_id, direction, at, method, lat, lon, accuracy_m)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"""

_CORRECTION = """
INSERT INTO visit_corrections (event_id, shift_id, carer_id, clock_in_at, clock_out_at, reason_code,
                               corrected_by, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"""

# The latest version by (occurred_at, event_id) is the invoice; every version is kept in invoice_versions.
_INVOICE = """
INSERT INTO invoices (invoice_id, package_id, provider_id, period_start, period_end, total_pence, lines,
                      submitted_at, event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
ON CONFLICT (invoice_id) DO UPDATE SET package_id = EXCLUDED.package_id, provider_id = EXCLUDED.provider_id,
    period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
    total_pence = EXCLUDED.total_pence, lines = EXCLUDED.lines, submitted_at = EXCLUDED.submitted_at,
    event_id = EXCLUDED.event_id
WHERE (invoices.submitted_at, invoices.event_id) < (EXCLUDED.submitted_at, EXCLUDED.event_id)"""

_INVOICE_VERSION = """
INSERT INTO invoice_versions (invoice_id, package_id, provider_id, period_start, period_end, total_pence, lines,
                              submitted_at, event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT (invoice_id, event_id) DO NOTHING"""

_ACTIVITY = """
INSERT INTO activities (event_id, carer_id, provider_id, package_id, kind, minutes, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING"""


def _location(p: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    loc = p.get("location")
    if not isinstance(loc, dict):
        return None, None, None
    return loc["lat"], loc["lon"], loc.get("accuracy_m", 0)


def planned_minutes_per_week(plan: Sequence[dict[str, Any]]) -> int:
    """Carer-minutes a week the plan orders: minutes_per_week x carers, summed."""
    return sum(int(line["minutes_per_week"]) * int(line.get("carers", 1)) for line in plan)


def _row(e: CareEvent) -> tuple[str, tuple[Any, ...]]:
    p, at = e.payload, e.occurred_at
    match e.type:
        case "commissioner.registered":
            return _COMMISSIONER, (p["commissioner_id"], p["name"], p.get("kind"),
                                   p.get("timezone") or DEFAULT_TIMEZONE, at)
        case "provider.registered":
            return _PROVIDER, (p["provider_id"], p["name"], at)
        case "carer.registered":
            return _CARER, (p["carer_id"], p["provider_id"], p.get("ni_number"), p.get("date_of_birth"),
                            list(p.get("competencies", [])), p["pay_pence_per_hour"], at)
        case "package.approved":
            person = p["person"]
            lat, lon, _ = _location(person)
            return _PACKAGE, (p["package_id"], p["commissioner_id"], p["provider_id"],
                              p.get("mechanism", "commissioned"), person["person_id"], person["nhs_number"],
                              lat, lon, p["period_start"], p["period_end"], p["budget_pence"],
                              p.get("contingency_pence", 0), json.dumps(p["plan"]), json.dumps(p["rates"]),
                              json.dumps(p.get("thresholds", {})), planned_minutes_per_week(p["plan"]), at)
        case "shift.scheduled" | "shift.updated":
            return _SHIFT, (p["shift_id"], p["package_id"], p["provider_id"], parse_instant(p["starts_at"]),
                            parse_instant(p["ends_at"]), p["service_type"], p.get("carers_required", 1),
                            list(p.get("carer_ids", [])), list(p.get("required_competencies", [])), at, at,
                            e.event_id)
        case "shift.cancelled":
            return _CANCEL, (p["cancelled_by"], p.get("reason"), at, p["shift_id"], at)
        case "visit.clock_in" | "visit.clock_out":
            direction = "in" if e.type == "visit.clock_in" else "out"
            return _CLOCK, (e.event_id, p["shift_id"], p["carer_id"], direction, at, p["method"],
                            *_location(p))
        case "visit.corrected":
            return _CORRECTION, (e.event_id, p["shift_id"], p["carer_id"], parse_instant(p["clock_in_at"]),
                                 parse_instant(p["clock_out_at"]), p["reason_code"], p["corrected_by"], at)
        case "invoice.submitted":
            return _INVOICE, (p["invoice_id"], p["package_id"], p["provider_id"], p["period_start"],
                              p["period_end"], p["total_pence"], json.dumps(p["lines"]), at, e.event_id)
        case "activity.logged":
            return _ACTIVITY, (e.event_id, p["carer_id"], p["provider_id"], p.get("package_id"), p["kind"],
                               p["minutes"], at)
    raise ValueError(f"no table for event type {e.type!r}")


def latest_versions(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Of shift rows in (occurred_at, event_id) order, each shift's first row with its latest
    scheduled_at: the one that applying them one by one under `scheduled_at <` would leave."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        kept = latest.get(row[0])
        if kept is None or kept[_SCHEDULED_AT] < row[_SCHEDULED_AT]:
            latest[row[0]] = row
    return list(latest.values())


def first_versions(rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Of shift rows in (occurred_at, event_id) order, each shift's first: its earliest announcement."""
    first: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        first.setdefault(row[0], row)
    return list(first.values())


# Statements run in this order so that a row exists before anything in the same batch updates it.
_ORDER = (_COMMISSIONER, _PROVIDER, _CARER, _PACKAGE, _SHIFT, _CANCEL, _CLOCK, _CORRECTION, _INVOICE,
          _ACTIVITY)


# Facts keyed by event_id that are only ever inserted: staged by COPY and merged in one statement
# (no row can conflict with another of the same batch, since the batch's event ids are unique).
_STAGED: dict[str, tuple[str, tuple[str, ...]]] = {
    _CLOCK: ("clock_events", ("event_id", "shift_id", "carer_id", "direction", "at", "method", "lat", "lon",
                              "accuracy_m")),
    _ACTIVITY: ("activities", ("event_id", "carer_id", "provider_id", "package_id", "kind", "minutes",
                               "occurred_at")),
}


async def write_entities(conn: AsyncConnection[Any], events: Sequence[CareEvent]) -> None:
    """Apply `events` (all references resolved) to the entity tables, one statement per table."""
    groups: dict[str, list[tuple[Any, ...]]] = {sql: [] for sql in _ORDER}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        sql, params = _row(event)
        groups[sql].append(params)
    async with conn.cursor() as cur:
        for sql in _ORDER:
            if not groups[sql]:
                continue
            if sql is _SHIFT:
                await stage_rows(cur, "staged_shifts", "shifts", _SHIFT_COLUMNS, latest_versions(groups[sql]))
                await cur.execute(sql)
            elif sql in _STAGED:
                table, columns = _STAGED[sql]
                await stage_rows(cur, f"staged_{table}", table, columns, groups[sql])
                merge = psql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (event_id) DO NOTHING").format(
                    psql.Identifier(table), psql.SQL(", ").join(map(psql.Identifier, columns)),
                    psql.SQL(", ").join(map(psql.Identifier, columns)), psql.Identifier(f"staged_{table}"))
                await cur.execute(merge)
            else:
                await cur.executemany(sql, groups[sql])
            if sql is _INVOICE:
                await cur.executemany(_INVOICE_VERSION, groups[sql])
        announced = first_versions(groups[_SHIFT])
        if announced:
            await cur.execute(_ANNOUNCED, ([r[0] for r in announced], [r[10] for r in announced],
                                           [r[11] for r in announced]))
