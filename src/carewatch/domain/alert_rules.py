"""Alert rules (DOMAIN.md "Alerts"): pure functions from care state, thresholds and `now` to decisions.

A rule returns what the alert of one (kind, subject) should be: `raise` (raise it, or keep it if
it is already open) or `resolve` (auto-resolve it if it is open), or None when it has nothing to
say. The store makes both idempotent, so rules can be evaluated as often as the sweeps like.

Subjects: shift-level alerts name the shift; alerts about one carer on one shift name the carer
as `<carer_id>@<shift_id>`, so that at most one is open per carer and visit; carer-wide alerts
(DOUBLE_BOOKED_CARER, PAY_BELOW_MINIMUM) name the carer; the rest the package or provider.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any, Literal

from carewatch.domain.deadlines import late_deadline, lone_worker_deadline, missed_deadline, partial_deadline
from carewatch.domain.model import Location, Shift
from carewatch.domain.thresholds import Thresholds

Severity = Literal["info", "warning", "critical"]
SubjectType = Literal["shift", "carer", "package", "provider", "invoice"]
Action = Literal["raise", "resolve"]


class AlertKind(StrEnum):
    LATE_START = "LATE_START"
    MISSED_VISIT = "MISSED_VISIT"
    PARTIAL_ATTENDANCE = "PARTIAL_ATTENDANCE"
    LONE_WORKER_OVERDUE = "LONE_WORKER_OVERDUE"
    SHORT_VISIT = "SHORT_VISIT"
    OVERRUN = "OVERRUN"
    COMPETENCE_MISMATCH = "COMPETENCE_MISMATCH"
    LOCATION_MISMATCH = "LOCATION_MISMATCH"
    UNKNOWN_CARER = "UNKNOWN_CARER"
    DOUBLE_BOOKED_CARER = "DOUBLE_BOOKED_CARER"
    UNDER_DELIVERY = "UNDER_DELIVERY"
    OVER_DELIVERY = "OVER_DELIVERY"
    BUDGET_AT_RISK = "BUDGET_AT_RISK"
    PAY_BELOW_MINIMUM = "PAY_BELOW_MINIMUM"
    INVOICE_DISPUTED = "INVOICE_DISPUTED"
    PROVIDER_PATTERN = "PROVIDER_PATTERN"


SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.LATE_START: "warning",
    AlertKind.MISSED_VISIT: "critical",
    AlertKind.PARTIAL_ATTENDANCE: "critical",
    AlertKind.LONE_WORKER_OVERDUE: "critical",
    AlertKind.SHORT_VISIT: "warning",
    AlertKind.OVERRUN: "info",
    AlertKind.COMPETENCE_MISMATCH: "warning",
    AlertKind.LOCATION_MISMATCH: "warning",
    AlertKind.UNKNOWN_CARER: "warning",
    AlertKind.DOUBLE_BOOKED_CARER: "warning",
    AlertKind.UNDER_DELIVERY: "warning",
    AlertKind.OVER_DELIVERY: "warning",
    AlertKind.BUDGET_AT_RISK: "warning",  # or critical: graded, see GRADED
    AlertKind.PAY_BELOW_MINIMUM: "warning",
    AlertKind.INVOICE_DISPUTED: "warning",
    AlertKind.PROVIDER_PATTERN: "warning",
}

# Kinds whose severity follows the condition's level: a change of level updates the open alert.
GRADED: frozenset[AlertKind] = frozenset({AlertKind.BUDGET_AT_RISK})

# A shift, or a carer on a shift, is late or missed once: after a human resolves such an alert
# the sweeps must not raise it again. Alerts of the other kinds describe a state that can recur.
ONCE_PER_SUBJECT: frozenset[AlertKind] = frozenset({
    AlertKind.LATE_START, AlertKind.MISSED_VISIT, AlertKind.PARTIAL_ATTENDANCE,
    AlertKind.LONE_WORKER_OVERDUE, AlertKind.SHORT_VISIT, AlertKind.OVERRUN,
    AlertKind.COMPETENCE_MISMATCH, AlertKind.LOCATION_MISMATCH, AlertKind.UNKNOWN_CARER,
})

# National Living Wage (21 and over), pence per hour, from the date given. Add a row each April.
NATIONAL_LIVING_WAGE: tuple[tuple[date, int], ...] = (
    (date(2024, 4, 1), 1144),
    (date(2025, 4, 1), 1221),
    (date(2026, 4, 1), 1271),
)
NLW_MIN_AGE = 21


@dataclass(frozen=True)
class AlertDecision:
    """What one alert should be now; `late_data` marks a resolution proven by an event that came late."""

    action: Action
    kind: AlertKind
    subject_type: SubjectType
    subject_id: str
    message: str = ""
    package_id: str | None = None
    shift_id: str | None = None
    carer_id: str | None = None
    provider_id: str | None = None
    commissioner_id: str | None = None
    late_data: bool = False
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    level: Severity | None = None  # a graded kind's severity now (GRADED); None: the kind's default
    # Who else the alert reaches (security/roles.Viewer.may_see), beside commissioner_id and provider_id:
    # the commissioners of the packages a carer attended, or of a provider's packages.
    audience: tuple[str, ...] = field(default=(), compare=False)

    @property
    def severity(self) -> Severity:
        return self.level or SEVERITY[self.kind]


@dataclass(frozen=True)
class CarerAttendance:
    """One carer's attendance on a shift as far as it has arrived (event times)."""

    carer_id: str
    first_clock_in_at: datetime
    open_since: datetime | None = None  # clocked in and not (yet) out: that clock-in's instant
    last_clock_out_at: datetime | None = None


@dataclass(frozen=True)
class VisitState:
    """A shift and who has clocked in on it, for the absence rules."""

    shift: Shift
    attendance: tuple[CarerAttendance, ...] = ()
    commissioner_id: str | None = None
    cancelled_at: datetime | None = None  # occurred_at of the cancellation, when cancelled

    @property
    def first_clock_in_at(self) -> datetime | None:
        return min((a.first_clock_in_at for a in self.attendance), default=None)


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)


def carer_subject(carer_id: str, shift_id: str) -> str:
    return f"{carer_id}@{shift_id}"


def _visit(action: Action, kind: AlertKind, visit: VisitState, message: str = "", *,
           late_data: bool = False, **details: Any) -> AlertDecision:
    s = visit.shift
    return AlertDecision(action, kind, "shift", s.shift_id, message, package_id=s.package_id,
                         shift_id=s.shift_id, provider_id=s.provider_id,
                         commissioner_id=visit.commissioner_id, late_data=late_data, details=details)


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def _no_show(kind: AlertKind, visit: VisitState, deadline: datetime, now: datetime,
             resolve_on_any_cancel: bool) -> AlertDecision | None:
    """LATE_START and MISSED_VISIT: nobody clocked in by the deadline."""
    first_in = visit.first_clock_in_at
    if first_in is not None:
        # The clock-in proves the carer was there; if it happened by the deadline the alert was
        # raised only because the event arrived late.
        return _visit("resolve", kind, visit, late_data=first_in <= deadline,
                      clock_in_at=first_in.isoformat())
    if visit.shift.cancelled_by is not None:
        cancelled_in_time = visit.cancelled_at is not None and visit.cancelled_at <= deadline
        if resolve_on_any_cancel or cancelled_in_time:
            return _visit("resolve", kind, visit, late_data=cancelled_in_time)
        # A cancellation made after the visit was already missed does not unmiss it.
        return None
    if now < deadline:
        return None
    s = visit.shift
    words = "started late: no clock-in" if kind is AlertKind.LATE_START else "missed: no clock-in"
    minutes = int((deadline - s.starts_at).total_seconds() // 60)
    return _visit("raise", kind, visit,
                  f"Visit {s.shift_id} ({s.service_type}, package {s.package_id}) {words} "
                  f"{minutes} min after its start at {_when(s.starts_at)}",
                  deadline=deadline.isoformat())


def late_start(visit: VisitState, th: Thresholds, now: datetime) -> AlertDecision | None:
    return _no_show(AlertKind.LATE_START, visit, late_deadline(visit.shift, th), now, True)


def missed_visit(visit: VisitState, th: Thresholds, now: datetime) -> AlertDecision | None:
    return _no_show(AlertKind.MISSED_VISIT, visit, missed_deadline(visit.shift, th), now, False)


def partial_attendance(visit: VisitState, th: Thresholds, now: datetime) -> AlertDecision | None:
    """Two or more carers needed, some but not all have clocked in by the deadline."""
    s = visit.shift
    if s.carers_required < 2 or not visit.attendance:
        return None
    deadline = partial_deadline(s, th)
    if len({a.carer_id for a in visit.attendance}) >= s.carers_required:
        ins = sorted(a.first_clock_in_at for a in visit.attendance)
        completed_at = ins[s.carers_required - 1]  # when the last needed carer arrived
        return _visit("resolve", AlertKind.PARTIAL_ATTENDANCE, visit, late_data=completed_at <= deadline)
    if s.cancelled_by is not None:
        return _visit("resolve", AlertKind.PARTIAL_ATTENDANCE, visit)
    if now < deadline:
        return None
    present = len({a.carer_id for a in visit.attendance})
    return _visit("raise", AlertKind.PARTIAL_ATTENDANCE, visit,
                  f"Visit {s.shift_id} (package {s.package_id}) needs {s.carers_required} carers; "
                  f"only {present} clocked in by {_when(deadline)}",
                  carers_present=present, carers_required=s.carers_required)


def lone_worker_overdue(visit: VisitState, th: Thresholds, now: datetime) -> list[AlertDecision]:
    """A carer still clocked in well after the visit should have ended: check they are safe."""
    s = visit.shift
    deadline = lone_worker_deadline(s, th)
    decisions: list[AlertDecision] = []
    for a in visit.attendance:
        subject = carer_subject(a.carer_id, s.shift_id)
        base = AlertDecision("resolve", AlertKind.LONE_WORKER_OVERDUE, "carer", subject,
                             package_id=s.package_id, shift_id=s.shift_id, carer_id=a.carer_id,
                             provider_id=s.provider_id, commissioner_id=visit.commissioner_id)
        if a.open_since is None:
            out = a.last_clock_out_at
            decisions.append(replace(base, late_data=out is not None and out <= deadline))
        elif now >= deadline:
            decisions.append(replace(
                base, action="raise",
                message=f"Carer {a.carer_id} clocked in to visit {s.shift_id} at {_when(a.open_since)} "
                        f"and has not clocked out {th.lone_worker_overdue_minutes:g} min after "
                        f"its end at {_when(s.ends_at)}",
                details={"deadline": deadline.isoformat()}))
    return decisions


def _carer_on_visit(kind: AlertKind, shift: Shift, carer_id: str, message: str,
                    commissioner_id: str | None, **details: Any) -> AlertDecision:
    return AlertDecision("raise", kind, "carer", carer_subject(carer_id, shift.shift_id), message,
                         package_id=shift.package_id, shift_id=shift.shift_id, carer_id=carer_id,
                         provider_id=shift.provider_id, commissioner_id=commissioner_id, details=details)


def short_visit(shift: Shift, carer_id: str, attended_seconds: int, th: Thresholds,
                commissioner_id: str | None = None) -> AlertDecision | None:
    """On a clock-out: the carer's attended time is under the share of the planned duration."""
    planned = shift.duration_seconds
    if planned <= 0 or Fraction(attended_seconds * 100) >= Fraction(th.short_visit_percent) * planned:
        return None
    return _carer_on_visit(AlertKind.SHORT_VISIT, shift, carer_id,
                           f"Carer {carer_id} attended visit {shift.shift_id} "
                           f"for {attended_seconds // 60} min "
                           f"of {planned // 60} planned (under {th.short_visit_percent:g}%)",
                           commissioner_id, attended_seconds=attended_seconds, planned_seconds=planned)


def overrun(shift: Shift, carer_id: str, attended_seconds: int, th: Thresholds,
            commissioner_id: str | None = None) -> AlertDecision | None:
    """On a clock-out: the carer stayed more than the allowance past the planned duration (not paid)."""
    planned = shift.duration_seconds
    if attended_seconds <= planned + th.overrun_minutes * 60:
        return None
    return _carer_on_visit(AlertKind.OVERRUN, shift, carer_id,
                           f"Carer {carer_id} attended visit {shift.shift_id} "
                           f"for {attended_seconds // 60} min, "
                           f"over the {planned // 60} planned by more than {th.overrun_minutes:g} min",
                           commissioner_id, attended_seconds=attended_seconds, planned_seconds=planned)


def competence_mismatch(shift: Shift, carer_id: str, competencies: Sequence[str] | None,
                        commissioner_id: str | None = None) -> AlertDecision | None:
    """On a clock-in: the carer lacks a competency the shift requires (unknown carers: UNKNOWN_CARER)."""
    if competencies is None:
        return None
    missing = sorted(set(shift.required_competencies) - set(competencies))
    if not missing:
        return None
    return _carer_on_visit(AlertKind.COMPETENCE_MISMATCH, shift, carer_id,
                           f"Carer {carer_id} clocked in to visit {shift.shift_id} "
                           f"without {', '.join(missing)}",
                           commissioner_id, missing=missing)


def haversine_metres(a: Location, b: Location) -> float:
    radius = 6_371_008.8  # mean Earth radius, metres
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * radius * math.asin(min(1.0, math.sqrt(h)))


def location_mismatch(shift: Shift, carer_id: str, person: Location | None, at: Location | None,
                      th: Thresholds, commissioner_id: str | None = None) -> AlertDecision | None:
    """On a clock-in: reported further from the person than the allowance plus the fix's accuracy."""
    if person is None or at is None:
        return None
    distance = haversine_metres(person, at)
    allowed = th.location_metres + max(0.0, at.accuracy_m)
    if distance <= allowed:
        return None
    return _carer_on_visit(AlertKind.LOCATION_MISMATCH, shift, carer_id,
                           f"Carer {carer_id} clocked in to visit {shift.shift_id} {distance:.0f} m from the "
                           f"person's home (allowed {allowed:.0f} m)",
                           commissioner_id, distance_m=round(distance, 1), allowed_m=allowed)


def unknown_carer(shift: Shift, carer_id: str, registered_provider_id: str | None,
                  commissioner_id: str | None = None) -> AlertDecision | None:
    """On a clock-in: the carer is not registered with the shift's provider."""
    if registered_provider_id == shift.provider_id:
        return None
    why = ("is not registered" if registered_provider_id is None
           else f"is registered with {registered_provider_id}")
    return _carer_on_visit(AlertKind.UNKNOWN_CARER, shift, carer_id,
                           f"Carer {carer_id} clocked in to visit {shift.shift_id} but {why}, "
                           f"not with provider {shift.provider_id}", commissioner_id,
                           registered_provider_id=registered_provider_id)


@dataclass(frozen=True)
class PackageDelivery:
    """A package's last 7 days of delivery, for UNDER_DELIVERY and OVER_DELIVERY."""

    package_id: str
    commissioner_id: str
    provider_id: str
    active_from: datetime  # start of the period (local midnight) or approval, whichever is later
    active_until: datetime  # end of the period (local midnight after period_end)
    actual_carer_seconds: int  # attended in the 7 days up to now
    plan_carer_minutes_per_week: Fraction


def delivery_alerts(d: PackageDelivery, th: Thresholds, now: datetime) -> list[AlertDecision]:
    """Under and over delivery against the plan, once the package has run a full week."""
    def decide(kind: AlertKind, breached: bool, message: str) -> AlertDecision:
        return AlertDecision("raise" if breached else "resolve", kind, "package", d.package_id,
                             message if breached else "", package_id=d.package_id,
                             provider_id=d.provider_id, commissioner_id=d.commissioner_id,
                             details={"actual_minutes": float(actual), "plan_minutes": float(plan)})

    actual = Fraction(d.actual_carer_seconds, 60)
    plan = d.plan_carer_minutes_per_week
    running = now >= d.active_from + timedelta(days=th.active_days_for_delivery) and now < d.active_until
    under = running and actual * 100 < plan * Fraction(th.under_delivery_percent)
    over = running and actual * 100 > plan * Fraction(th.over_delivery_percent)
    share = f"{float(actual * 100 / plan):.0f}%" if plan else "unplanned time"
    return [
        decide(AlertKind.UNDER_DELIVERY, under,
               f"Package {d.package_id} delivered {float(actual):.0f} carer-minutes in the last 7 days, "
               f"{share} of the {float(plan):.0f} planned (under {th.under_delivery_percent:g}%)"),
        decide(AlertKind.OVER_DELIVERY, over,
               f"Package {d.package_id} delivered {float(actual):.0f} carer-minutes in the last 7 days, "
               f"{share} of the {float(plan):.0f} planned (over {th.over_delivery_percent:g}%)"),
    ]


def national_living_wage(on: date) -> int | None:
    """The NLW in force on that day, pence per hour; None before the table starts."""
    rate: int | None = None
    for since, pence in NATIONAL_LIVING_WAGE:
        if on >= since:
            rate = pence
    return rate


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def pay_below_minimum(carer_id: str, provider_id: str, pay_pence_per_hour: int, date_of_birth: date | None,
                      on: date) -> AlertDecision:
    """Pay under the NLW for carers 21 and over, or whose age is unknown (the cautious reading)."""
    nlw = national_living_wage(on)
    applies = nlw is not None and (date_of_birth is None or age_on(date_of_birth, on) >= NLW_MIN_AGE)
    below = applies and nlw is not None and pay_pence_per_hour < nlw
    if not below:
        return AlertDecision("resolve", AlertKind.PAY_BELOW_MINIMUM, "carer", carer_id,
                             carer_id=carer_id, provider_id=provider_id)
    return AlertDecision("raise", AlertKind.PAY_BELOW_MINIMUM, "carer", carer_id,
                         f"Carer {carer_id} of {provider_id} is paid {pay_pence_per_hour}p/h, below the "
                         f"National Living Wage of {nlw}p/h in force on {on.isoformat()}",
                         carer_id=carer_id, provider_id=provider_id,
                         details={"pay_pence_per_hour": pay_pence_per_hour, "nlw_pence_per_hour": nlw,
                                  "age_known": date_of_birth is not None})


def provider_pattern(provider_id: str, due: int, missed: int, th: Thresholds) -> AlertDecision:
    """A provider missing more than its share of due visits over the last 7 days."""
    breached = due >= th.provider_pattern_min_due and missed * 100 > th.provider_pattern_percent * due
    if not breached:
        return AlertDecision("resolve", AlertKind.PROVIDER_PATTERN, "provider", provider_id,
                             provider_id=provider_id)
    return AlertDecision("raise", AlertKind.PROVIDER_PATTERN, "provider", provider_id,
                         f"Provider {provider_id} missed {missed} of {due} due visits in the last 7 days "
                         f"({missed * 100 / due:.1f}%, over {th.provider_pattern_percent:g}%)",
                         provider_id=provider_id, details={"due": due, "missed": missed})
