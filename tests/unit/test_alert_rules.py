"""Alert rules at their boundaries: exactly at the deadline, a second before and after; overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from carewatch.domain import alert_rules as r
from carewatch.domain.alert_rules import AlertKind, CarerAttendance, PackageDelivery, VisitState
from carewatch.domain.model import Location, Shift
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS as TH
from carewatch.domain.thresholds import Thresholds, resolve_thresholds

START = datetime(2026, 4, 6, 7, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)


def shift(**kw: object) -> Shift:
    base: dict[str, object] = dict(shift_id="SH-1", package_id="PKG-1", provider_id="PRV-1", starts_at=START,
                                   ends_at=START + timedelta(minutes=30), service_type="personal_care")
    base.update(kw)
    return Shift(**base)  # type: ignore[arg-type]


def visit(*attendance: CarerAttendance, **kw: object) -> VisitState:
    return VisitState(shift(**kw), tuple(attendance), commissioner_id="LA-1")


def came(carer: str, at: datetime, out: datetime | None = None) -> CarerAttendance:
    return CarerAttendance(carer, at, None if out else at, out)


@pytest.mark.parametrize(("offset", "raised"), [(-SEC, False), (timedelta(0), True), (SEC, True)])
def test_late_start_raises_from_exactly_the_deadline(offset: timedelta, raised: bool) -> None:
    d = r.late_start(visit(), TH, START + timedelta(minutes=15) + offset)
    assert (d is not None and d.action == "raise") is raised
    if d is not None:
        assert d.kind is AlertKind.LATE_START and d.severity == "warning"
        assert (d.subject_type, d.subject_id, d.commissioner_id) == ("shift", "SH-1", "LA-1")
        assert "SH-1" in d.message and "15 min" in d.message


@pytest.mark.parametrize(("offset", "raised"), [(-SEC, False), (timedelta(0), True), (SEC, True)])
def test_missed_visit_raises_from_exactly_an_hour(offset: timedelta, raised: bool) -> None:
    d = r.missed_visit(visit(), TH, START + timedelta(minutes=60) + offset)
    assert (d is not None and d.action == "raise") is raised
    if d is not None:
        assert d.severity == "critical"


@pytest.mark.parametrize(("clock_in_offset", "late_data"), [(-SEC, True), (timedelta(0), True), (SEC, False)])
def test_a_clock_in_resolves_and_says_whether_the_alert_was_caused_by_late_data(
        clock_in_offset: timedelta, late_data: bool) -> None:
    deadline = START + timedelta(minutes=15)
    d = r.late_start(visit(came("CR-1", deadline + clock_in_offset)), TH, deadline + timedelta(hours=2))
    assert d is not None and d.action == "resolve" and d.late_data is late_data


def test_missed_alert_resolved_by_a_clock_in_half_an_hour_late_is_late_data_but_late_start_is_not() -> None:
    v = visit(came("CR-1", START + timedelta(minutes=30)))
    now = START + timedelta(hours=3)
    missed, late = r.missed_visit(v, TH, now), r.late_start(v, TH, now)
    assert missed is not None and missed.action == "resolve" and missed.late_data
    assert late is not None and late.action == "resolve" and not late.late_data


def test_cancellation_resolves_late_start_but_a_late_cancellation_does_not_unmiss_a_visit() -> None:
    now = START + timedelta(hours=2)
    v = VisitState(shift(cancelled_by="provider"), (), cancelled_at=START + timedelta(minutes=90))
    late = r.late_start(v, TH, now)
    assert late is not None and late.action == "resolve"
    assert r.missed_visit(v, TH, now) is None
    in_time = VisitState(shift(cancelled_by="person"), (), cancelled_at=START - timedelta(hours=1))
    missed = r.missed_visit(in_time, TH, now)
    assert missed is not None and missed.action == "resolve" and missed.late_data


def test_package_override_moves_the_deadline() -> None:
    th = resolve_thresholds(TH, {"late_start_minutes": 20}, {"late_start_minutes": 5})
    assert th.late_start_minutes == 5
    at = START + timedelta(minutes=5)
    d = r.late_start(visit(), th, at)
    assert d is not None and d.action == "raise"
    assert r.late_start(visit(), th, at - SEC) is None
    assert r.late_start(visit(), TH, at) is None


def test_overrides_ignore_unknown_names_and_unusable_values() -> None:
    th = resolve_thresholds(TH, {"missed_visit_minutes": 45, "nonsense": 1}, {"late_start_minutes": -3,
                                                                             "overrun_minutes": True})
    assert th == Thresholds(missed_visit_minutes=45)


@pytest.mark.parametrize(("offset", "raised"), [(-SEC, False), (timedelta(0), True)])
def test_partial_attendance_needs_someone_but_not_everyone(offset: timedelta, raised: bool) -> None:
    now = START + timedelta(minutes=15) + offset
    one = visit(came("CR-1", START), carers_required=2)
    d = r.partial_attendance(one, TH, now)
    assert (d is not None and d.action == "raise") is raised
    assert r.partial_attendance(visit(carers_required=2), TH, now + timedelta(hours=1)) is None
    both = visit(came("CR-1", START), came("CR-2", START + timedelta(minutes=20)), carers_required=2)
    done = r.partial_attendance(both, TH, now + timedelta(hours=1))
    assert done is not None and done.action == "resolve" and not done.late_data


@pytest.mark.parametrize(("offset", "raised"), [(-SEC, False), (timedelta(0), True), (SEC, True)])
def test_lone_worker_overdue_thirty_minutes_after_the_end(offset: timedelta, raised: bool) -> None:
    v = visit(came("CR-1", START))
    ds = r.lone_worker_overdue(v, TH, START + timedelta(minutes=60) + offset)
    assert [d.subject_id for d in ds if d.action == "raise"] == (["CR-1@SH-1"] if raised else [])


def test_lone_worker_clock_out_resolves_with_late_data_when_it_happened_in_time() -> None:
    v = visit(came("CR-1", START, out=START + timedelta(minutes=31)))
    (d,) = r.lone_worker_overdue(v, TH, START + timedelta(hours=5))
    assert d.action == "resolve" and d.late_data and d.carer_id == "CR-1"


def test_short_visit_and_overrun_boundaries() -> None:
    s = shift()  # 30 min planned
    assert r.short_visit(s, "CR-1", int(0.75 * 1800), TH) is None
    d = r.short_visit(s, "CR-1", int(0.75 * 1800) - 1, TH)
    assert d is not None and d.kind is AlertKind.SHORT_VISIT and d.subject_id == "CR-1@SH-1"
    assert r.overrun(s, "CR-1", 1800 + 1800, TH) is None
    o = r.overrun(s, "CR-1", 1800 + 1800 + 1, TH)
    assert o is not None and o.severity == "info"
    assert r.short_visit(s, "CR-1", 100, Thresholds(short_visit_percent=5)) is None


def test_competence_unknown_carer_and_location() -> None:
    s = shift(required_competencies=("medication", "moving_and_handling"))
    d = r.competence_mismatch(s, "CR-1", ["moving_and_handling"])
    assert d is not None and d.details["missing"] == ["medication"]
    assert r.competence_mismatch(s, "CR-1", ["medication", "moving_and_handling", "x"]) is None
    assert r.unknown_carer(s, "CR-1", "PRV-1") is None
    u = r.unknown_carer(s, "CR-9", "PRV-2")
    assert u is not None and "PRV-2" in u.message
    home = Location(53.4098, -3.0456)
    north_300m = Location(53.4098 + 300 / 111_195, -3.0456, accuracy_m=10)
    assert 299 < r.haversine_metres(home, north_300m) < 301
    m = r.location_mismatch(s, "CR-1", home, north_300m, TH)
    assert m is not None and m.kind is AlertKind.LOCATION_MISMATCH
    assert r.location_mismatch(s, "CR-1", home, Location(north_300m.lat, north_300m.lon, 60), TH) is None


def _delivery(actual_minutes: int, active_days: float = 8) -> PackageDelivery:
    now = START
    return PackageDelivery("PKG-1", "LA-1", "PRV-1", now - timedelta(days=active_days),
                           now + timedelta(days=300), actual_minutes * 60, Fraction(1000))


def test_delivery_at_exactly_90_and_110_percent_is_within_plan() -> None:
    def kinds(minutes: int, days: float = 8) -> set[str]:
        decisions = r.delivery_alerts(_delivery(minutes, days), TH, START)
        return {d.kind.value for d in decisions if d.action == "raise"}
    assert kinds(900) == set() and kinds(1100) == set()
    assert kinds(899) == {"UNDER_DELIVERY"}
    assert kinds(1101) == {"OVER_DELIVERY"}
    assert kinds(0, days=6.9) == set()  # not yet a full week active


def test_pay_below_minimum_uses_the_rate_in_force_on_the_day() -> None:
    assert r.national_living_wage(date(2026, 3, 31)) == 1221
    assert r.national_living_wage(date(2026, 4, 1)) == 1271
    assert r.national_living_wage(date(2024, 3, 31)) is None
    assert r.pay_below_minimum("CR-2", "PRV-1", 1270, None, date(2026, 4, 1)).action == "raise"
    assert r.pay_below_minimum("CR-2", "PRV-1", 1270, None, date(2026, 3, 31)).action == "resolve"
    assert r.pay_below_minimum("CR-2", "PRV-1", 1271, None, date(2026, 4, 1)).action == "resolve"
    # 21 on the day: covered; one day short of 21: not covered by the NLW
    assert r.pay_below_minimum("CR-3", "PRV-1", 1000, date(2005, 4, 1), date(2026, 4, 1)).action == "raise"
    assert r.pay_below_minimum("CR-3", "PRV-1", 1000, date(2005, 4, 2), date(2026, 4, 1)).action == "resolve"


def test_provider_pattern_needs_twenty_due_and_more_than_five_percent() -> None:
    assert r.provider_pattern("PRV-1", 20, 1, TH).action == "resolve"  # exactly 5%
    assert r.provider_pattern("PRV-1", 20, 2, TH).action == "raise"
    assert r.provider_pattern("PRV-1", 19, 5, TH).action == "resolve"
