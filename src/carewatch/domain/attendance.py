"""Attendance pairs from clock events, and the ledger of what one shift delivered and costs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from carewatch.domain.bands import split_by_band
from carewatch.domain.model import AttendancePair, Band, ClockEvent, Correction, Rate, Shift, ShiftLedger
from carewatch.domain.money import rate_for

UNVERIFIED_METHODS = frozenset({"manual"})
CORRECTED = "corrected"


def _second(at: datetime) -> datetime:
    """Instants are compared and counted in UTC whole seconds (truncated)."""
    return at.astimezone(UTC).replace(microsecond=0)


def _event_order(e: ClockEvent) -> tuple[datetime, int, str, str, str, str]:
    # A total order over every field used, so duplicates and input order cannot change the result.
    return (_second(e.at), 0 if e.direction == "in" else 1, e.event_id, e.carer_id, e.method, e.shift_id)


def _unique(events: Iterable[ClockEvent]) -> list[ClockEvent]:
    """One event per event_id (the first in the total order, should a duplicate differ), sorted."""
    by_id: dict[str, ClockEvent] = {}
    for e in events:
        kept = by_id.get(e.event_id)
        if kept is None or _event_order(e) < _event_order(kept):
            by_id[e.event_id] = e
    return sorted(by_id.values(), key=_event_order)


def _carer_pairs(events: list[ClockEvent]) -> list[AttendancePair]:
    pairs: list[AttendancePair] = []
    open_in: ClockEvent | None = None
    for e in events:
        if e.direction == "in":
            if open_in is None:  # a second clock-in while already in is ignored
                open_in = e
        elif open_in is not None:  # a clock-out with nobody clocked in is ignored
            methods = {open_in.method, e.method}
            manual = methods & UNVERIFIED_METHODS
            pairs.append(AttendancePair(
                carer_id=e.carer_id,
                clock_in_at=_second(open_in.at),
                clock_out_at=_second(e.at),
                method=min(manual) if manual else open_in.method,
                verified=not manual,
            ))
            open_in = None
    if open_in is not None:
        pairs.append(AttendancePair(open_in.carer_id, _second(open_in.at), None, open_in.method,
                                    open_in.method not in UNVERIFIED_METHODS))
    return pairs


def attendance_pairs(
    clock_events: Iterable[ClockEvent], corrections: Iterable[Correction] = ()
) -> tuple[AttendancePair, ...]:
    """Each carer's clock-in/clock-out pairs on one shift, sorted by (clock_in_at, carer_id).

    A visit.corrected replaces all of that carer's pairs with one unverified pair; the
    latest correction (by occurred_at, then event_id) wins.
    """
    by_carer: dict[str, list[ClockEvent]] = {}
    for e in _unique(clock_events):
        by_carer.setdefault(e.carer_id, []).append(e)
    latest: dict[str, Correction] = {}
    for c in corrections:
        kept = latest.get(c.carer_id)
        if kept is None or (c.occurred_at, c.event_id) > (kept.occurred_at, kept.event_id):
            latest[c.carer_id] = c
    pairs: list[AttendancePair] = []
    for carer_id, events in by_carer.items():
        if carer_id not in latest:
            pairs.extend(_carer_pairs(events))
    for carer_id, c in latest.items():
        pairs.append(AttendancePair(carer_id, _second(c.clock_in_at), _second(c.clock_out_at),
                                    CORRECTED, verified=False, reason_code=c.reason_code,
                                    corrected_by=c.corrected_by, corrected_at=c.occurred_at))
    return tuple(sorted(pairs, key=lambda p: (p.clock_in_at, p.carer_id, p.clock_out_at is None,
                                              p.clock_out_at or p.clock_in_at, p.method)))


def shift_ledger(
    shift: Shift,
    clock_events: Iterable[ClockEvent],
    corrections: Iterable[Correction],
    rates: Sequence[Rate],
    tz: ZoneInfo,
) -> ShiftLedger:
    """What `shift` delivered (carer-seconds planned, actual, payable, overrun...) and its exact cost."""
    pairs = attendance_pairs(
        (e for e in clock_events if e.shift_id == shift.shift_id),
        (c for c in corrections if c.shift_id == shift.shift_id),
    )
    duration = max(0, shift.duration_seconds)
    planned = duration * shift.carers_required

    actual_by_carer: dict[str, int] = {}
    first_in: dict[str, datetime] = {}
    for p in pairs:
        actual_by_carer[p.carer_id] = actual_by_carer.get(p.carer_id, 0) + p.seconds
        if p.carer_id not in first_in or p.clock_in_at < first_in[p.carer_id]:
            first_in[p.carer_id] = p.clock_in_at
    # Only the carers the shift needs are paid, first come first paid; the rest is overrun.
    paid = sorted(first_in, key=lambda c: (first_in[c], c))[: shift.carers_required]

    payable = 0
    band_seconds: dict[Band, int] = {}
    rate_seconds = 0
    for carer_id in paid:
        carer_payable = min(actual_by_carer[carer_id], duration)
        payable += carer_payable
        start = first_in[carer_id]
        for band, seconds in split_by_band(start, start + timedelta(seconds=carer_payable), tz).items():
            band_seconds[band] = band_seconds.get(band, 0) + seconds
            rate_seconds += seconds * rate_for(rates, shift.service_type, band)
    actual = sum(actual_by_carer.values())

    cancelled = shift.cancelled_by is not None
    return ShiftLedger(
        shift_id=shift.shift_id,
        package_id=shift.package_id,
        provider_id=shift.provider_id,
        starts_at=shift.starts_at,
        planned_seconds=planned,
        scheduled_seconds=0 if cancelled else planned,
        actual_seconds=actual,
        payable_seconds=payable,
        overrun_seconds=actual - payable,
        unverified_seconds=sum(p.seconds for p in pairs if not p.verified),
        provider_cancelled_seconds=planned if shift.cancelled_by == "provider" else 0,
        band_seconds=band_seconds,
        rate_seconds=rate_seconds,
        first_clock_in_at=min(first_in.values(), default=None),
        open_attendances=sum(1 for p in pairs if p.clock_out_at is None),
        distinct_carers=len(first_in),
        attendance=pairs,
    )
