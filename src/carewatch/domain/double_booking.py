"""DOUBLE_BOOKED_CARER decided by event time: a carer's attendance on two shifts at once.

The rule looks only at the carer's attendance intervals (any providers), never at the order
events arrived in, so one feed gives the same alerts whatever its batching or partitioning:
- an overlap all of whose intervals are closed is *settled*: it is recorded as raised and
  auto-resolved (one of the clock-outs ended it);
- the overlap still going on (some interval open at its end) is raised once it has begun by
  processing time, and auto-resolves when it ends;
- an alert whose overlap is no longer there (a clock-out arrived late, with an earlier time)
  auto-resolves as caused by late data.
An overlap that ended but still involves an open interval waits: a clock-out in flight on another
partition may yet show it never happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from carewatch.domain.alert_rules import AlertDecision, AlertKind


@dataclass(frozen=True)
class Stint:
    """One attendance interval of a carer on a shift (event times); `end` is None while clocked in."""

    shift_id: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Overlap:
    start: datetime
    end: datetime | None  # None while it is going on: two or more intervals still open
    shift_ids: tuple[str, ...]
    settled: bool  # every interval in it is closed: no clock-out to come can change it


@dataclass(frozen=True)
class RecordedOverlap:
    """A DOUBLE_BOOKED_CARER alert already stored for the carer, by the overlap start it named."""

    start: datetime | None
    active: bool


def overlaps(stints: Iterable[Stint]) -> list[Overlap]:
    """The maximal spans in which the carer is on two or more shifts at once, oldest first."""
    items = list(stints)
    # At one instant a clock-out comes before a clock-in: back-to-back visits do not overlap.
    points = sorted([(s.start, 1, i) for i, s in enumerate(items)]
                    + [(s.end, 0, i) for i, s in enumerate(items) if s.end is not None])
    found: list[Overlap] = []
    active: set[int] = set()
    members: set[int] = set()
    began: datetime | None = None
    for at, starting, i in points:
        if starting:
            active.add(i)
        else:
            active.discard(i)
        if began is None and len(active) >= 2:
            began, members = at, set(active)
        elif began is not None and starting:
            members.add(i)
        elif began is not None and len(active) < 2:
            found.append(_overlap(items, began, at, members))
            began = None
    if began is not None:
        found.append(_overlap(items, began, None, members))
    return [o for o in found if len(o.shift_ids) >= 2]


def _overlap(items: Sequence[Stint], began: datetime, ended: datetime | None, members: set[int]) -> Overlap:
    return Overlap(began, ended, tuple(sorted({items[i].shift_id for i in members})),
                   all(items[i].end is not None for i in members))


def _decision(action: str, carer_id: str, provider_id: str | None, overlap: Overlap | None,
              late_data: bool = False) -> AlertDecision:
    if overlap is None or action == "resolve":
        return AlertDecision("resolve", AlertKind.DOUBLE_BOOKED_CARER, "carer", carer_id, carer_id=carer_id,
                             late_data=late_data)
    return AlertDecision(
        "raise", AlertKind.DOUBLE_BOOKED_CARER, "carer", carer_id,
        f"Carer {carer_id} was clocked in on {len(overlap.shift_ids)} visits at once from "
        f"{overlap.start.strftime('%Y-%m-%d %H:%M:%SZ')}: {', '.join(overlap.shift_ids)}",
        carer_id=carer_id, provider_id=provider_id,
        details={"shift_ids": list(overlap.shift_ids), "overlap_start": overlap.start.isoformat()})


@dataclass(frozen=True)
class DoubleBookingPlan:
    """What to do, in this order: resolve the active alert, record settled overlaps, raise the current."""

    resolve: AlertDecision | None = None
    record: tuple[AlertDecision, ...] = ()  # stored raised and auto-resolved at once
    raise_now: AlertDecision | None = None


def double_booking(carer_id: str, provider_id: str | None, stints: Iterable[Stint],
                   recorded: Iterable[RecordedOverlap], now: datetime) -> DoubleBookingPlan:
    """Reconcile the carer's overlaps (from their attendance) with the alerts already stored."""
    found = overlaps(stints)
    by_start = {o.start: o for o in found}
    known = list(recorded)
    seen = {r.start for r in known}
    resolve: AlertDecision | None = None
    active_start: datetime | None = None
    for r in known:
        if not r.active:
            continue
        overlap = by_start.get(r.start) if r.start is not None else None
        if overlap is None:
            resolve = _decision("resolve", carer_id, provider_id, None, late_data=True)
        elif overlap.end is not None:
            resolve = _decision("resolve", carer_id, provider_id, overlap)
        else:
            active_start = r.start
    record = tuple(_decision("raise", carer_id, provider_id, o) for o in found
                   if o.settled and o.start not in seen)
    current = next((o for o in found if o.end is None), None)
    raise_now = None
    if current is not None and current.start not in seen and active_start is None and current.start <= now:
        raise_now = _decision("raise", carer_id, provider_id, current)
    return DoubleBookingPlan(resolve, record, raise_now)
