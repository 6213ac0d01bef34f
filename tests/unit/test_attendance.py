"""Attendance pairs and the shift ledger: pay to plan, overrun, unverified time, bands, order-independence."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from carewatch.domain.attendance import attendance_pairs, shift_ledger
from carewatch.domain.model import ClockEvent, Correction, Rate, Shift
from carewatch.domain.money import round_half_up, spend_pence

LONDON = ZoneInfo("Europe/London")
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "contracts" / "valid.jsonl"
T0 = datetime(2026, 4, 14, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 BST: all day band
RATES = (Rate("personal_care", "day", 3600), Rate("personal_care", "night", 7200))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def shift(carers: int = 1, minutes: int = 60, **kw: object) -> Shift:
    return Shift("SH", "PKG", "PRV", T0, at(minutes), "personal_care", carers_required=carers, **kw)  # type: ignore[arg-type]


def ev(eid: str, carer: str, direction: str, minute: float, method: str = "nfc") -> ClockEvent:
    return ClockEvent(eid, "SH", carer, direction, at(minute), method)  # type: ignore[arg-type]


def _parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def test_valid_example_sh1_on_easter_monday() -> None:
    lines = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    pkg = next(e for e in lines if e["type"] == "package.approved")
    sh = next(e for e in lines if e["type"] == "shift.scheduled" and e["shift_id"] == "SH-1")
    rates = tuple(Rate(r["service_type"], r["band"], r["pence_per_hour"]) for r in pkg["rates"])
    s = Shift(sh["shift_id"], sh["package_id"], sh["provider_id"], _parse(sh["starts_at"]),
              _parse(sh["ends_at"]), sh["service_type"], sh["carers_required"], tuple(sh["carer_ids"]))
    events = [ClockEvent(e["event_id"], e["shift_id"], e["carer_id"],
                         "in" if e["type"] == "visit.clock_in" else "out",
                         _parse(e["occurred_at"]), e["method"])
              for e in lines if e["type"] in ("visit.clock_in", "visit.clock_out")]
    result = shift_ledger(s, events, (), rates, LONDON)
    per_carer = {p.carer_id: p.seconds for p in result.attendance}
    assert per_carer == {"CR-001": 1770, "CR-002": 1625}
    assert result.planned_seconds == 3600 and result.scheduled_seconds == 3600
    assert result.actual_seconds == result.payable_seconds == 3395
    assert result.overrun_seconds == 0 and result.unverified_seconds == 0
    assert result.band_seconds == {"bank_holiday": 3395}
    assert result.rate_seconds == 3395 * 4800
    assert spend_pence(result.rate_seconds) == Fraction(3395 * 4800, 3600)
    assert round_half_up(spend_pence(result.rate_seconds)) == 4527
    assert result.distinct_carers == 2 and result.open_attendances == 0
    assert result.first_clock_in_at == datetime(2026, 4, 6, 7, 2, 10, tzinfo=UTC)


def test_pay_to_plan_excess_is_overrun() -> None:
    r = shift_ledger(shift(), [ev("a", "C1", "in", -5), ev("b", "C1", "out", 70)], (), RATES, LONDON)
    assert r.actual_seconds == 75 * 60
    assert r.payable_seconds == 3600 and r.overrun_seconds == 15 * 60
    # The payable interval starts at the clock-in, five minutes early, and lasts the planned hour.
    assert r.band_seconds == {"day": 3600} and r.rate_seconds == 3600 * 3600


def test_several_pairs_add_up_and_are_capped_together() -> None:
    events = [ev("a", "C1", "in", 0), ev("b", "C1", "out", 20),
              ev("c", "C1", "in", 30), ev("d", "C1", "out", 80)]
    r = shift_ledger(shift(), events, (), RATES, LONDON)
    assert [p.seconds for p in r.attendance] == [1200, 3000]
    assert r.actual_seconds == 4200 and r.payable_seconds == 3600 and r.overrun_seconds == 600


def test_carer_beyond_those_required_is_overrun() -> None:
    events = [ev("a", "C2", "in", 1), ev("b", "C2", "out", 61),
              ev("c", "C1", "in", 0), ev("d", "C1", "out", 30)]
    r = shift_ledger(shift(carers=1), events, (), RATES, LONDON)
    assert r.distinct_carers == 2
    assert r.payable_seconds == 1800  # C1 clocked in first, so C1 is the one paid
    assert r.overrun_seconds == 3600


def test_open_pair_counts_zero_and_is_reported() -> None:
    r = shift_ledger(shift(), [ev("a", "C1", "in", 0)], (), RATES, LONDON)
    assert r.open_attendances == 1 and r.actual_seconds == 0 and r.payable_seconds == 0
    assert r.first_clock_in_at == T0
    assert r.attendance[0].clock_out_at is None


def test_stray_events_are_ignored() -> None:
    events = [ev("x", "C1", "out", -10), ev("a", "C1", "in", 0), ev("b", "C1", "in", 5),
              ev("c", "C1", "out", 30), ev("d", "C1", "out", 40)]
    pairs = attendance_pairs(events)
    assert [(p.clock_in_at, p.clock_out_at) for p in pairs] == [(at(0), at(30))]


def test_manual_and_corrected_time_is_unverified() -> None:
    events = [ev("a", "C1", "in", 0, "manual"), ev("b", "C1", "out", 30), ev("c", "C2", "in", 0),
              ev("d", "C2", "out", 40)]
    r = shift_ledger(shift(carers=2), events, (), RATES, LONDON)
    assert r.unverified_seconds == 1800 and r.payable_seconds == 1800 + 2400
    fix = Correction("k", "SH", "C2", at(0), at(50), occurred_at=at(120))
    r = shift_ledger(shift(carers=2), events, (fix,), RATES, LONDON)
    assert r.unverified_seconds == 1800 + 3000
    corrected = [p for p in r.attendance if p.carer_id == "C2"]
    assert len(corrected) == 1 and corrected[0].method == "corrected" and not corrected[0].verified


def test_latest_correction_wins_and_replaces_all_pairs() -> None:
    events = [ev("a", "C1", "in", 0), ev("b", "C1", "out", 10),
              ev("c", "C1", "in", 20), ev("d", "C1", "out", 30)]
    older = Correction("k1", "SH", "C1", at(0), at(45), occurred_at=at(100))
    newer = Correction("k2", "SH", "C1", at(0), at(55), occurred_at=at(200))
    for order in ((older, newer), (newer, older)):
        r = shift_ledger(shift(), events, order, RATES, LONDON)
        assert r.actual_seconds == 55 * 60 and len(r.attendance) == 1


def test_corrections_and_events_of_other_shifts_are_ignored() -> None:
    other = ClockEvent("z", "OTHER", "C1", "in", at(0), "nfc")
    fix = Correction("k", "OTHER", "C1", at(0), at(50), occurred_at=at(120))
    events = [other, ev("a", "C1", "in", 0), ev("b", "C1", "out", 10)]
    r = shift_ledger(shift(), events, (fix,), RATES, LONDON)
    assert r.actual_seconds == 600 and r.unverified_seconds == 0


def test_cancelled_shifts() -> None:
    by_person = shift_ledger(shift(carers=2, cancelled_by="person"), [], (), RATES, LONDON)
    assert by_person.planned_seconds == 7200 and by_person.scheduled_seconds == 0
    assert by_person.provider_cancelled_seconds == 0
    by_provider = shift_ledger(shift(carers=2, cancelled_by="provider"),
                               [ev("a", "C1", "in", 0), ev("b", "C1", "out", 10)], (), RATES, LONDON)
    assert by_provider.scheduled_seconds == 0 and by_provider.provider_cancelled_seconds == 7200
    assert by_provider.payable_seconds == 600  # care given before the cancellation is still counted


def test_payable_interval_split_across_night_boundary() -> None:
    start = datetime(2026, 4, 14, 20, 30, tzinfo=UTC)  # Tuesday 21:30 BST
    s = Shift("SH", "PKG", "PRV", start, start + timedelta(hours=1), "personal_care")
    events = [ClockEvent("a", "SH", "C1", "in", start, "nfc"),
              ClockEvent("b", "SH", "C1", "out", start + timedelta(hours=2), "nfc")]
    r = shift_ledger(s, events, (), RATES, LONDON)
    assert r.band_seconds == {"day": 1800, "night": 1800}
    assert r.rate_seconds == 1800 * 3600 + 1800 * 7200


def test_sub_second_instants_are_truncated() -> None:
    events = [ClockEvent("a", "SH", "C1", "in", T0 + timedelta(microseconds=999_999), "nfc"),
              ClockEvent("b", "SH", "C1", "out", T0 + timedelta(seconds=10, microseconds=1), "nfc")]
    assert shift_ledger(shift(), events, (), RATES, LONDON).actual_seconds == 10


# Property tests: random clock streams for up to four carers.
event_lists = st.lists(
    st.tuples(st.sampled_from(["C1", "C2", "C3", "C4"]), st.sampled_from(["in", "out"]),
              st.integers(-30, 150), st.sampled_from(["nfc", "gps", "manual"])),
    max_size=14,
)


def _events(raw: list[tuple[str, str, int, str]]) -> list[ClockEvent]:
    return [ev(f"e{i}", carer, d, minute, method) for i, (carer, d, minute, method) in enumerate(raw)]


@settings(max_examples=300, deadline=None)
@given(raw=event_lists, carers=st.integers(1, 4), minutes=st.integers(0, 120), data=st.data())
def test_ledger_ignores_order_and_duplication(raw: list[tuple[str, str, int, str]], carers: int, minutes: int,
                                              data: st.DataObject) -> None:
    events = _events(raw)
    s = shift(carers=carers, minutes=minutes)
    shuffled = data.draw(st.permutations(events))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else shuffled
    assert shift_ledger(s, duplicated, (), RATES, LONDON) == shift_ledger(s, events, (), RATES, LONDON)


@settings(max_examples=300, deadline=None)
@given(raw=event_lists, carers=st.integers(1, 4), minutes=st.integers(0, 120))
def test_ledger_invariants(raw: list[tuple[str, str, int, str]], carers: int, minutes: int) -> None:
    r = shift_ledger(shift(carers=carers, minutes=minutes), _events(raw), (), RATES, LONDON)
    assert 0 <= r.payable_seconds <= r.planned_seconds
    assert r.payable_seconds + r.overrun_seconds == r.actual_seconds
    assert 0 <= r.unverified_seconds <= r.actual_seconds
    assert sum(r.band_seconds.values()) == r.payable_seconds
    assert r.actual_seconds == sum(p.seconds for p in r.attendance)
