"""What actually happens on each shift: scheduling, changes, cancellations, clock-ins and clock-outs."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from carewatch.simulator.options import FeedOptions
from carewatch.simulator.rota import RotaShift

Timed = tuple[datetime, dict[str, Any]]  # (occurred_at, payload without event_id/occurred_at)


@dataclass
class VisitRecord:
    """The outcome of one shift, kept for the provider's invoice."""

    shift: RotaShift
    cancelled_by: str | None = None
    payable_seconds: int = 0  # carer-seconds, capped at the plan per carer
    events: list[Timed] = field(default_factory=list)


def local(dt: datetime, options: FeedOptions) -> str:
    return dt.astimezone(options.tz).isoformat()


def _jitter(rng: random.Random, low_minutes: float, high_minutes: float) -> timedelta:
    return timedelta(seconds=round(rng.uniform(low_minutes * 60, high_minutes * 60)))


def _where(rng: random.Random, shift: RotaShift, method: str) -> dict[str, Any] | None:
    if method in ("telephony", "manual"):
        return None
    package = shift.package
    # About one clock-in in a hundred comes from the wrong place (LOCATION_MISMATCH), kilometres away.
    spread = 0.02 if rng.random() < 0.01 else 0.0002
    return {"lat": round(package.lat + rng.uniform(-spread, spread), 6),
            "lon": round(package.lon + rng.uniform(-spread, spread), 6),
            "accuracy_m": rng.randint(4, 25)}


def simulate_visit(rng: random.Random, shift: RotaShift, options: FeedOptions) -> VisitRecord:
    p = shift.package
    ids = {"shift_id": shift.shift_id, "package_id": p.package_id, "provider_id": p.provider.provider_id}
    record = VisitRecord(shift)
    starts, ends = shift.starts_at, shift.ends_at
    scheduled_at = starts - _jitter(rng, 60, 240)
    body = {**ids, "starts_at": local(starts, options), "ends_at": local(ends, options),
            "service_type": shift.visit.service_type, "carers_required": shift.visit.carers,
            "carer_ids": list(shift.carer_ids), "required_competencies": list(shift.visit.competencies)}
    record.events.append((scheduled_at, {"type": "shift.scheduled", **body}))
    if rng.random() < 0.02:  # the coordinator moves the call a little
        moved = timedelta(minutes=rng.choice([-30, -15, 15, 30]))
        starts, ends = starts + moved, ends + moved
        changed_at = min(scheduled_at + _jitter(rng, 5, 40), starts - timedelta(minutes=20))
        record.events.append((max(changed_at, scheduled_at + timedelta(seconds=1)),
                              {"type": "shift.updated", **body, "starts_at": local(starts, options),
                               "ends_at": local(ends, options)}))
    if rng.random() < options.cancel_rate:
        by = "person" if rng.random() < 0.6 else "provider"
        reason = rng.choice(["in hospital", "with family", "declined the visit"]) if by == "person" else \
            rng.choice(["no carer available", "carer sickness", "vehicle breakdown"])
        at = max(starts - _jitter(rng, 20, 120), scheduled_at + timedelta(minutes=1))
        record.events.append((at, {"type": "shift.cancelled", **ids, "cancelled_by": by, "reason": reason}))
        record.cancelled_by = by
        return record
    if rng.random() < options.miss_rate:
        return record  # nobody came: the scheduler's sweeps raise LATE_START then MISSED_VISIT
    planned = ends - starts
    late = rng.random() < options.late_rate
    base_in = starts + (_jitter(rng, 16, 50) if late else _jitter(rng, -5, 8))
    short = rng.random() < options.short_rate
    overrun = not short and rng.random() < 0.03
    for n, carer_id in enumerate(shift.carer_ids):
        if n > 0 and rng.random() < options.miss_rate:
            continue  # the second carer of a double-handed call never arrives (PARTIAL_ATTENDANCE)
        _attend(rng, record, ids, carer_id, base_in + _jitter(rng, 0, 3) * n, planned, short, overrun)
    return record


def heavy_traveller(carer_id: str) -> bool:
    """One carer in six works a rural round: every provider's second carer, and every sixth after
    (stable by id whatever the seed, so even a small demo has one)."""
    number = carer_id.rsplit("-", 1)[-1]
    if number.isdigit():
        return int(number) % 6 == 2
    return int(hashlib.sha256(carer_id.encode()).hexdigest()[:8], 16) % 6 == 2


def _attend(rng: random.Random, record: VisitRecord, ids: dict[str, str], carer_id: str, clock_in: datetime,
            planned: timedelta, short: bool, overrun: bool) -> None:
    shift = record.shift
    method = "manual" if rng.random() < 0.03 else shift.package.provider.method
    if short:
        stay = planned * rng.uniform(0.35, 0.7)
    elif overrun:
        stay = planned + _jitter(rng, 31, 50)
    else:
        stay = planned * rng.uniform(0.9, 1.05)
    clock_out = clock_in + timedelta(seconds=round(stay.total_seconds()))
    who = {**ids, "carer_id": carer_id}
    where = _where(rng, shift, method)
    record.events.append((clock_in, {"type": "visit.clock_in", **who, "method": method,
                                     **({"location": where} if where else {})}))
    forgot = rng.random() < 0.01  # no clock-out at all: LONE_WORKER_OVERDUE until the office corrects it
    if not forgot:
        out_where = _where(rng, shift, method)
        record.events.append((clock_out, {"type": "visit.clock_out", **who, "method": method,
                                          **({"location": out_where} if out_where else {})}))
    if forgot or rng.random() < 0.015:
        # The office corrects the record later: the carer's stay as the family confirmed it.
        fixed_in = clock_in.replace(second=0)
        fixed_out = fixed_in + timedelta(minutes=round(stay.total_seconds() / 60))
        record.events.append((clock_out + _jitter(rng, 60, 240), {
            "type": "visit.corrected", **who, "clock_in_at": fixed_in.isoformat().replace("+00:00", "Z"),
            "clock_out_at": fixed_out.isoformat().replace("+00:00", "Z"),
            "reason_code": "forgot_clock_out" if forgot else "device_fault",
            "corrected_by": f"coordinator@{shift.package.provider.provider_id}"}))
        clock_in, clock_out = fixed_in, fixed_out
    record.payable_seconds += min(int((clock_out - clock_in).total_seconds()), int(planned.total_seconds()))
    if rng.random() < 0.2:
        record.events.append((clock_out + timedelta(minutes=1), {
            "type": "activity.logged", "carer_id": carer_id, "provider_id": ids["provider_id"],
            "package_id": ids["package_id"], "kind": "travel", "minutes": rng.randint(5, 25)}))
    if heavy_traveller(carer_id):
        # A rural round: long unpaid drives and waits between calls take this carer's real pay below
        # the minimum (PAY_BELOW_MINIMUM). Drawn from the visit's own seed, so the rest of the feed
        # stays as it was.
        own = random.Random(f"{shift.shift_id}/{carer_id}")
        record.events.append((clock_out + timedelta(minutes=2), {
            "type": "activity.logged", "carer_id": carer_id, "provider_id": ids["provider_id"],
            "package_id": ids["package_id"], "kind": "travel", "minutes": own.randint(35, 55)}))
        if own.random() < 0.3:
            record.events.append((clock_out + timedelta(minutes=3), {
                "type": "activity.logged", "carer_id": carer_id, "provider_id": ids["provider_id"],
                "kind": "waiting", "minutes": own.randint(10, 25)}))
