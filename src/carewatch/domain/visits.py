"""A visit as the absence rules see it: a shift's attendance so far and its thresholds (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from carewatch.domain import alert_rules as rules
from carewatch.domain.alert_rules import AlertDecision, CarerAttendance, VisitState
from carewatch.domain.model import Direction, Location, ShiftFacts, ShiftLedger
from carewatch.domain.thresholds import Thresholds, resolve_thresholds


def visit_state(facts: ShiftFacts, global_th: Thresholds) -> tuple[VisitState, Thresholds]:
    """A shift's attendance so far (clock events, or a carer's latest correction) and its thresholds."""
    clock: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for e in facts.clocks:
        clock[e.carer_id].append((e.at, e.direction))
    corrected = {c.carer_id: (c.clock_in_at, c.clock_out_at) for c in facts.corrections}  # the latest wins
    from_clock = [carer_attendance(carer, events) for carer, events in clock.items() if carer not in corrected]
    attendance = [a for a in from_clock if a is not None]
    attendance += [CarerAttendance(carer, cin, None, cout) for carer, (cin, cout) in corrected.items()]
    th = resolve_thresholds(global_th, facts.commissioner_thresholds, facts.package_thresholds)
    return VisitState(facts.shift, tuple(attendance), facts.commissioner_id, facts.cancelled_at), th


def carer_attendance(carer_id: str, events: Sequence[tuple[datetime, str]]) -> CarerAttendance | None:
    """One carer's clock events on a shift, reduced to what the absence rules need."""
    ordered = sorted(events)  # at the same instant 'in' sorts before 'out'
    ins = [at for at, direction in ordered if direction == "in"]
    if not ins:
        return None
    outs = [at for at, direction in ordered if direction == "out"]
    last_at, last_direction = ordered[-1]
    return CarerAttendance(
        carer_id, ins[0], last_at if last_direction == "in" else None, outs[-1] if outs else None
    )


def visit_decisions(visit: VisitState, th: Thresholds, now: datetime) -> list[AlertDecision]:
    found = [
        rules.late_start(visit, th, now),
        rules.missed_visit(visit, th, now),
        rules.partial_attendance(visit, th, now),
    ]
    return [d for d in found if d is not None] + rules.lone_worker_overdue(visit, th, now)




@dataclass(frozen=True)
class ClockArrival:
    """A clock event that has just been applied, as the arrival rules need it."""

    direction: Direction
    shift_id: str
    carer_id: str
    location: Location | None = None


@dataclass(frozen=True)
class CarerRecord:
    """A carer as registered: with which provider, and their competencies."""

    provider_id: str
    competencies: tuple[str, ...] = ()


def attended_seconds(ledgers: Mapping[str, ShiftLedger], keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Seconds each (shift, carer) attended per the ledgers, for carers with no attendance still open."""
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


def arrival_decisions(arrivals: Sequence[ClockArrival], visits: Mapping[str, tuple[VisitState, Thresholds]],
                      carers: Mapping[str, CarerRecord], people: Mapping[str, Location],
                      attended: Mapping[tuple[str, str], int]) -> list[AlertDecision]:
    """On a clock-in: COMPETENCE_MISMATCH, LOCATION_MISMATCH; on a clock-out (or a late
    clock-in) that leaves the carer with no open attendance on the visit: SHORT_VISIT and OVERRUN."""
    decisions: list[AlertDecision] = []
    judged: set[tuple[str, str]] = set()
    for a in arrivals:
        if a.shift_id not in visits:
            continue
        visit, th = visits[a.shift_id]
        shift, com = visit.shift, visit.commissioner_id
        registered = carers.get(a.carer_id)
        found = []
        if a.direction == "in":
            # UNKNOWN_CARER waits for the registration's partition (unregistered_clock_ins, settling).
            found = [
                rules.competence_mismatch(shift, a.carer_id, registered.competencies if registered else None, com),
                rules.location_mismatch(shift, a.carer_id, people.get(shift.package_id), a.location, th, com),
            ]
        # The attendance closed: by this clock-out, or by a clock-in that arrived after its clock-out
        # (another order of arrival must give the same alerts). SHORT_VISIT and OVERRUN are raised once.
        if (shift.shift_id, a.carer_id) in attended and (shift.shift_id, a.carer_id) not in judged:
            judged.add((shift.shift_id, a.carer_id))
            seconds = attended[(shift.shift_id, a.carer_id)]
            found += [rules.short_visit(shift, a.carer_id, seconds, th, com),
                      rules.overrun(shift, a.carer_id, seconds, th, com)]
        decisions += [d for d in found if d is not None]
    return decisions


def unregistered_clock_ins(arrivals: Sequence[ClockArrival], visits: Mapping[str, tuple[VisitState, Thresholds]],
                           carers: Mapping[str, CarerRecord]) -> list[tuple[str, str, str]]:
    """Clock-ins by carers not registered with the shift's provider, as (carer, shift, provider): their
    UNKNOWN_CARER waits until the registration (another partition) has had time to arrive."""
    found: set[tuple[str, str, str]] = set()
    for a in arrivals:
        if a.direction != "in" or a.shift_id not in visits:
            continue
        shift = visits[a.shift_id][0].shift
        registered = carers.get(a.carer_id)
        if rules.unknown_carer(shift, a.carer_id, registered.provider_id if registered else None) is not None:
            found.add((a.carer_id, shift.shift_id, shift.provider_id))
    return sorted(found)


def settled_unknown_carers(waiting: Sequence[tuple[str, str]], carers: Mapping[str, CarerRecord],
                           visits: Mapping[str, VisitState]) -> list[AlertDecision]:
    """UNKNOWN_CARER for clock-ins (carer, shift) whose wait is over, judged by the registrations now known."""
    found = []
    for carer, shift_id in waiting:
        visit = visits.get(shift_id)
        if visit is None:
            continue
        registered = carers.get(carer)
        found.append(rules.unknown_carer(visit.shift, carer, registered.provider_id if registered else None,
                                         visit.commissioner_id))
    return [d for d in found if d is not None]


def registration_decisions(registered: Mapping[str, CarerRecord], unknown: Sequence[tuple[str, str, str, str]],
                           visits: Mapping[str, VisitState],
                           waiting: Sequence[tuple[str, str, str]] = ()) -> list[AlertDecision]:
    """A carer's registration with the shift's provider resolves the open UNKNOWN_CARER alerts its clock-ins
    raised (caused by late data: the registration travelled on another partition), and the competencies
    it brings are judged for those visits now (COMPETENCE_MISMATCH), as if it had been read first; so
    are those of the clock-ins still waiting for it (no alert was raised for those).
    `registered`: the batch's registrations by carer; `unknown`: the open alerts as (subject, carer, the
    shift's provider, shift); `waiting`: the clock-ins it took back, as (carer, shift, provider);
    `visits`: the states of those shifts."""
    resolves: list[AlertDecision] = []
    judged: list[AlertDecision] = []
    pending: list[tuple[str | None, str, str, str]] = [*unknown]
    pending += [(None, carer, provider, shift_id) for carer, shift_id, provider in waiting]
    seen: set[tuple[str, str]] = set()
    for subject, carer, provider, shift_id in pending:
        record = registered.get(carer)
        if record is None or record.provider_id != provider:
            continue
        if (carer, shift_id) in seen:
            continue
        seen.add((carer, shift_id))
        if subject is not None:
            resolves.append(AlertDecision("resolve", rules.AlertKind.UNKNOWN_CARER, "carer", subject,
                                          carer_id=carer, provider_id=provider, late_data=True))
        visit = visits.get(shift_id)
        found = (rules.competence_mismatch(visit.shift, carer, record.competencies, visit.commissioner_id)
                 if visit is not None else None)
        if found is not None:
            judged.append(found)
    return resolves + sorted(judged, key=lambda d: d.subject_id)
