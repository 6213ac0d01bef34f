"""Alerts raised or resolved by the events of a batch, inside the batch's own transaction.

On a clock-in: UNKNOWN_CARER, COMPETENCE_MISMATCH, LOCATION_MISMATCH. On a clock-out: SHORT_VISIT and
OVERRUN (once the carer has no open attendance on the visit). On any attendance change: the carer's
DOUBLE_BOOKED_CARER by event time (alerts/double_booking.py). On a carer's registration: their
UNKNOWN_CARER alerts with that provider auto-resolve. For every visit an event touched, the absence
rules run again, so a clock-in, clock-out, correction or cancellation resolves LATE_START, MISSED_VISIT,
PARTIAL_ATTENDANCE and LONE_WORKER_OVERDUE at once (with late data when it proves the carer was there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from psycopg import AsyncConnection

from carewatch.alerts.bus import AlertBus
from carewatch.alerts.double_booking import double_booking_alerts
from carewatch.alerts.store import (
    Alert,
    apply_decisions,
    open_subjects,
    worth_applying,
)
from carewatch.alerts.sweeps import visit_decisions, visit_state
from carewatch.domain import alert_rules as rules
from carewatch.domain.alert_rules import AlertDecision
from carewatch.domain.model import Location, ShiftLedger
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, Thresholds
from carewatch.schema.events import CareEvent
from carewatch.store.shift_facts import ShiftFacts

log = logging.getLogger(__name__)

VISIT_EVENTS = frozenset(
    {"visit.clock_in", "visit.clock_out", "visit.corrected", "shift.cancelled", "shift.updated"}
)
ATTENDANCE_EVENTS = frozenset({"visit.clock_in", "visit.clock_out", "visit.corrected"})


def _location(raw: Any) -> Location | None:
    if not isinstance(raw, dict) or "lat" not in raw or "lon" not in raw:
        return None
    return Location(float(raw["lat"]), float(raw["lon"]), float(raw.get("accuracy_m") or 0.0))


async def _carers(conn: AsyncConnection[Any], carer_ids: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
    cur = await conn.execute(
        "SELECT carer_id, provider_id, competencies FROM carers WHERE carer_id = ANY(%s)", (list(carer_ids),)
    )
    return {c: (p, list(comps or [])) for c, p, comps in await cur.fetchall()}


async def _people(conn: AsyncConnection[Any], package_ids: Sequence[str]) -> dict[str, Location]:
    cur = await conn.execute(
        "SELECT package_id, person_lat, person_lon FROM packages WHERE package_id = ANY(%s)"
        " AND person_lat IS NOT NULL AND person_lon IS NOT NULL",
        (list(package_ids),),
    )
    return {p: Location(lat, lon) for p, lat, lon in await cur.fetchall()}


def _attended(ledgers: Mapping[str, ShiftLedger], keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Seconds each (shift, carer) attended per the batch's ledgers, for carers with no attendance still open."""
    found: dict[tuple[str, str], int] = {}
    open_pairs: set[tuple[str, str]] = set()
    for shift_id in {s for s, _ in keys}:
        ledger = ledgers.get(shift_id)
        for pair in ledger.attendance if ledger is not None else ():
            key = (shift_id, pair.carer_id)
            if key not in keys:
                continue
            if pair.clock_out_at is None:
                open_pairs.add(key)
                continue
            found[key] = found.get(key, 0) + pair.seconds
    return {k: v for k, v in found.items() if k not in open_pairs}


_UNKNOWN_FOR = """
SELECT subject_id, carer_id, provider_id FROM alerts
WHERE kind = 'UNKNOWN_CARER' AND status IN ('open', 'acknowledged') AND carer_id = ANY(%s)"""


async def registration_decisions(conn: AsyncConnection[Any], registrations: Sequence[CareEvent]) -> list[AlertDecision]:
    """UNKNOWN_CARER auto-resolves (caused by late data) once the carer's registration with the
    shift's provider arrives: it was read after the clock-in, often from another partition."""
    registered = {e.payload["carer_id"]: e.payload["provider_id"] for e in registrations}
    cur = await conn.execute(_UNKNOWN_FOR, (sorted(registered),))
    return [AlertDecision("resolve", rules.AlertKind.UNKNOWN_CARER, "carer", subject, carer_id=carer,
                          provider_id=provider, late_data=True)
            for subject, carer, provider in await cur.fetchall() if registered.get(carer) == provider]


async def apply_event_alerts(
    conn: AsyncConnection[Any],
    events: Sequence[CareEvent],
    now: datetime,
    facts: Mapping[str, ShiftFacts],
    ledgers: Mapping[str, ShiftLedger],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Alert]:
    """Evaluate the event-driven rules for the applied events; return the alerts that changed.

    `facts` and `ledgers` are the batch's, read and rebuilt after its events were stored; they
    cover every shift the events name.
    """
    decisions: list[AlertDecision] = []
    registrations = [e for e in events if e.type == "carer.registered"]
    if registrations:
        decisions += await registration_decisions(conn, registrations)
    touching = [e for e in events if e.type in VISIT_EVENTS]
    visits = {
        shift_id: visit_state(facts[shift_id], thresholds)
        for shift_id in sorted({e.payload["shift_id"] for e in touching}) if shift_id in facts
    }
    for visit, th in visits.values():
        decisions += visit_decisions(visit, th, now)

    clocks = [
        e
        for e in touching
        if e.type in ("visit.clock_in", "visit.clock_out") and e.payload["shift_id"] in visits
    ]
    carer_ids = sorted({e.payload["carer_id"] for e in clocks})
    carers = await _carers(conn, carer_ids)
    people = await _people(conn, sorted({visits[e.payload["shift_id"]][0].shift.package_id for e in clocks}))
    outs = {(e.payload["shift_id"], e.payload["carer_id"]) for e in clocks if e.type == "visit.clock_out"}
    attended = _attended(ledgers, outs) if outs else {}
    for e in clocks:
        visit, th = visits[e.payload["shift_id"]]
        shift, carer, com = visit.shift, e.payload["carer_id"], visit.commissioner_id
        registered = carers.get(carer)
        if e.type == "visit.clock_in":
            found = [
                rules.unknown_carer(shift, carer, registered[0] if registered else None, com),
                rules.competence_mismatch(shift, carer, registered[1] if registered else None, com),
                rules.location_mismatch(
                    shift, carer, people.get(shift.package_id), _location(e.payload.get("location")), th, com
                ),
            ]
        elif (shift.shift_id, carer) in attended:
            seconds = attended[(shift.shift_id, carer)]
            found = [
                rules.short_visit(shift, carer, seconds, th, com),
                rules.overrun(shift, carer, seconds, th, com),
            ]
        else:
            found = []
        decisions += [d for d in found if d is not None]
    changed: list[Alert] = []
    if decisions:
        kinds = {d.kind for d in decisions}
        changed = await apply_decisions(conn, worth_applying(decisions, await open_subjects(conn, kinds)), now)
    # A carer's attendance moved (clock events, corrections): their overlaps by event time.
    moved = [e for e in touching if e.type in ATTENDANCE_EVENTS and e.payload["shift_id"] in visits]
    if moved:
        earliest = min(e.occurred_at for e in moved)
        changed += await double_booking_alerts(conn, {e.payload["carer_id"] for e in moved}, earliest, now)
    return changed


class HasAlerts(Protocol):
    @property
    def affected_shift_ids(self) -> tuple[str, ...]: ...

    @property
    def alerts(self) -> tuple[Alert, ...]: ...


def publishing_listener(bus: AlertBus) -> Callable[[HasAlerts], Awaitable[None]]:
    """A batch listener (called after the commit) that publishes the batch's alerts and shift updates."""

    async def publish(outcome: HasAlerts) -> None:
        await bus.publish_alerts(outcome.alerts)
        await bus.publish_shift_updates(outcome.affected_shift_ids)
        for alert in outcome.alerts:
            log.info("event %s %s %s: %s", alert.status, alert.kind, alert.subject_id, alert.message)

    return publish
