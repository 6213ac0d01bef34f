"""The alerts a batch's events raise or resolve, decided by the domain, stored in the batch's transaction.

On a clock-in: COMPETENCE_MISMATCH and LOCATION_MISMATCH; a clock-in by a carer not registered with
the shift's provider waits (store/settling.py) and the scheduler raises UNKNOWN_CARER once the
registration has had time to arrive from its partition. On a clock-out: SHORT_VISIT and OVERRUN (once
the carer has no open attendance on the visit). On any attendance change: the carer's
DOUBLE_BOOKED_CARER by event time (alerts/double_booking.py). On a carer's registration: their
clock-ins waiting on that provider stop waiting, and their UNKNOWN_CARER alerts with it auto-resolve.
For every visit an event touched, the absence rules run again, so a clock-in, clock-out, correction or
cancellation resolves LATE_START, MISSED_VISIT, PARTIAL_ATTENDANCE and LONE_WORKER_OVERDUE at once
(with late data when it proves the carer was there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.alerts.double_booking import double_booking_alerts
from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, open_subjects, open_unknown_carers, worth_applying
from carewatch.domain.alert_rules import AlertDecision
from carewatch.domain.model import Location, ShiftFacts, ShiftLedger
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, Thresholds
from carewatch.domain.visits import (
    CarerRecord,
    ClockArrival,
    arrival_decisions,
    attended_seconds,
    registration_decisions,
    unregistered_clock_ins,
    visit_decisions,
    visit_state,
)
from carewatch.schema.events import CareEvent
from carewatch.store.people import carer_records, homes, lock_carers
from carewatch.store.settling import registration_arrived, wait_for_registration
from carewatch.store.shift_facts import load_shift_facts

VISIT_EVENTS = frozenset(
    {"visit.clock_in", "visit.clock_out", "visit.corrected", "shift.cancelled", "shift.updated"}
)
ATTENDANCE_EVENTS = frozenset({"visit.clock_in", "visit.clock_out", "visit.corrected"})


def _location(raw: Any) -> Location | None:
    if not isinstance(raw, dict) or "lat" not in raw or "lon" not in raw:
        return None
    return Location(float(raw["lat"]), float(raw["lon"]), float(raw.get("accuracy_m") or 0.0))


def arrival(e: CareEvent) -> ClockArrival:
    p = e.payload
    return ClockArrival("in" if e.type == "visit.clock_in" else "out", p["shift_id"], p["carer_id"],
                        _location(p.get("location")))


async def batch_alerts(conn: AsyncConnection[Any], events: Sequence[CareEvent], now: datetime,
                       facts: Mapping[str, ShiftFacts], ledgers: Mapping[str, ShiftLedger],
                       thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[AlertRecord]:
    """Evaluate the event-driven rules for the applied events; return the alerts that changed.

    `facts` and `ledgers` are the batch's, read and rebuilt after its events were stored; they
    cover every shift the events name.
    """
    decisions: list[AlertDecision] = []
    registered = {e.payload["carer_id"]: CarerRecord(e.payload["provider_id"], tuple(e.payload.get("competencies", ())))
                  for e in events if e.type == "carer.registered"}
    touching = [e for e in events if e.type in VISIT_EVENTS]
    visits = {shift_id: visit_state(facts[shift_id], thresholds)
              for shift_id in sorted({e.payload["shift_id"] for e in touching}) if shift_id in facts}
    arrivals = [arrival(e) for e in touching
                if e.type in ("visit.clock_in", "visit.clock_out") and e.payload["shift_id"] in visits]
    # The absence rules read no carer.
    for visit, th in visits.values():
        decisions += visit_decisions(visit, th, now)
    # A carer's registration and their clock events travel on different partitions, so two workers
    # may apply them at once: each batch takes its carers' locks before reading either side, so the
    # later one sees the earlier one's commit (an UNKNOWN_CARER raised concurrently is resolved).
    # (pipeline/batch.py has taken every carer of the batch already; taken again, they cost nothing.)
    await lock_carers(conn, set(registered) | {a.carer_id for a in arrivals})
    if registered:
        # Take back the clock-ins waiting for these registrations first: a sweep raising one of them
        # now holds its row, so this waits for its commit and then reads the alert it raised.
        waiting = await registration_arrived(conn, {c: r.provider_id for c, r in registered.items()})
        unknown = await open_unknown_carers(conn, sorted(registered))
        named = {shift for _, _, _, shift in unknown if shift} | {shift for _, shift, _ in waiting}
        states = await load_shift_facts(conn, named) if named else {}
        decisions += registration_decisions(
            registered, unknown, {s: visit_state(f, thresholds)[0] for s, f in states.items()}, waiting)
    if arrivals:
        carers = await carer_records(conn, {a.carer_id for a in arrivals})
        people = await homes(conn, {visits[a.shift_id][0].shift.package_id for a in arrivals})
        # Every arrival's pair: a clock-in that arrives after its clock-out closes the pair too.
        touched = {(a.shift_id, a.carer_id) for a in arrivals}
        decisions += arrival_decisions(arrivals, visits, carers, people, attended_seconds(ledgers, touched))
        await wait_for_registration(conn, unregistered_clock_ins(arrivals, visits, carers), now)
    changed: list[AlertRecord] = []
    if decisions:
        kinds = {d.kind for d in decisions}
        changed = await apply_decisions(conn, worth_applying(decisions, await open_subjects(conn, kinds)), now)
    moved = [e for e in touching if e.type in ATTENDANCE_EVENTS and e.payload["shift_id"] in visits]
    if moved:
        earliest = min(e.occurred_at for e in moved)
        changed += await double_booking_alerts(conn, {e.payload["carer_id"] for e in moved}, earliest, now)
    return changed
