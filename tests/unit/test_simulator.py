"""The simulated feed: deterministic, contract-valid, ordered, and as realistic as the options ask."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator

from carewatch.simulator import FeedOptions, coming_monday, generate_feed
from carewatch.simulator.options import parse_start

SCHEMA = Path(__file__).resolve().parents[2] / "src" / "carewatch" / "schema" / "care-event.schema.json"
START = datetime(2026, 4, 6, 5, 0, tzinfo=UTC)  # Monday 06:00 BST
LONDON = ZoneInfo("Europe/London")


def nhs_number_valid(s: str) -> bool:
    """Written out again here, so the test does not trust the code it checks (DOMAIN.md's rule)."""
    check = 11 - sum(int(d) * w for d, w in zip(s[:9], range(10, 1, -1), strict=True)) % 11
    return len(s) == 10 and s.isdigit() and check != 10 and (0 if check == 11 else check) == int(s[9])


def ni_number_valid(s: str) -> bool:
    return (len(s) == 9 and s[0] not in "DFIQUV" and s[1] not in "DFIOQUV" and s[2:8].isdigit()
            and s[8] in "ABCD" and s[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def feed() -> list[dict]:
    return generate_feed(FeedOptions(start=START, seed=11, packages=40, providers=4, days=2))


def test_same_seed_and_options_give_byte_identical_feeds() -> None:
    options = FeedOptions(start=START, seed=3, packages=12, providers=3)
    first = json.dumps(generate_feed(options), sort_keys=False)
    assert first == json.dumps(generate_feed(options), sort_keys=False)
    assert first != json.dumps(generate_feed(FeedOptions(start=START, seed=4, packages=12, providers=3)))


def test_every_event_is_contract_valid(feed: list[dict]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [(e["event_id"], err.message) for e in feed for err in validator.iter_errors(e)]
    assert errors == []
    assert len({e["event_id"] for e in feed}) == len(feed)


def test_sorted_by_occurred_at_with_registrations_before_the_day(feed: list[dict]) -> None:
    times = [_instant(e["occurred_at"]) for e in feed]
    assert times == sorted(times)
    registrations = {"commissioner.registered", "provider.registered", "carer.registered", "package.approved"}
    for event in feed:
        if event["type"] in registrations:
            assert _instant(event["occurred_at"]) < START
    first_other = next(i for i, e in enumerate(feed) if e["type"] not in registrations)
    assert all(e["type"] in registrations for e in feed[:first_other])
    assert all(e["type"] not in registrations for e in feed[first_other:])


def test_population_identifiers_and_pay(feed: list[dict]) -> None:
    kinds = Counter(e["type"] for e in feed)
    assert 2 <= kinds["commissioner.registered"] <= 3
    assert kinds["provider.registered"] == 4
    assert kinds["package.approved"] == 40
    packages = [e for e in feed if e["type"] == "package.approved"]
    assert all(nhs_number_valid(p["person"]["nhs_number"]) for p in packages)
    assert all(p["budget_pence"] > p["contingency_pence"] > 0 for p in packages)
    assert any(line["carers"] == 2 for p in packages for line in p["plan"])
    carers = [e for e in feed if e["type"] == "carer.registered"]
    assert all(ni_number_valid(c["ni_number"]) for c in carers if "ni_number" in c)
    assert any(c["pay_pence_per_hour"] <= 1271 for c in carers)
    assert any(c["pay_pence_per_hour"] > 1271 for c in carers)


def test_plan_minutes_match_the_scheduled_pattern() -> None:
    # One full week: the scheduled carer-minutes of each package equal its plan's minutes x carers.
    feed = generate_feed(FeedOptions(start=START, seed=5, packages=10, providers=2, days=7, cancel_rate=0))
    plans = {e["package_id"]: sum(line["minutes_per_week"] * line["carers"] for line in e["plan"])
             for e in feed if e["type"] == "package.approved"}
    scheduled: Counter[str] = Counter()
    latest = {}
    for e in feed:
        if e["type"] in ("shift.scheduled", "shift.updated"):
            latest[e["shift_id"]] = e
    for e in latest.values():
        minutes = (_instant(e["ends_at"]) - _instant(e["starts_at"])).total_seconds() / 60
        scheduled[e["package_id"]] += round(minutes) * e["carers_required"]
    assert scheduled == plans


def test_shifts_are_scheduled_a_little_before_they_start_and_in_the_window(feed: list[dict]) -> None:
    shifts = [e for e in feed if e["type"] == "shift.scheduled"]
    assert shifts
    for s in shifts:
        starts = _instant(s["starts_at"])
        assert START <= starts < START + timedelta(days=2)
        lead = starts - _instant(s["occurred_at"])
        assert timedelta(minutes=59) <= lead <= timedelta(hours=4, minutes=1)
        assert 15 <= (_instant(s["ends_at"]) - starts).total_seconds() / 60 <= 600
    nights = [s for s in shifts if s["service_type"] == "waking_night"]
    assert nights and all(_instant(s["starts_at"]).astimezone(LONDON).hour == 22 for s in nights)
    assert all(_instant(s["ends_at"]).astimezone(LONDON).hour == 7 for s in nights)
    assert any(s["carers_required"] == 2 for s in shifts)
    slots = {_instant(s["starts_at"]).astimezone(LONDON).hour for s in shifts}
    assert {7, 12, 17, 20} & slots == {7, 12, 17, 20}


def test_clock_events_follow_their_shift(feed: list[dict]) -> None:
    shifts = {}
    for e in feed:
        if e["type"] in ("shift.scheduled", "shift.updated"):
            shifts[e["shift_id"]] = e
        elif e["type"] in ("visit.clock_in", "visit.clock_out", "shift.cancelled", "visit.corrected"):
            assert e["shift_id"] in shifts, "an event named a shift before it was scheduled"
    ins = {(e["shift_id"], e["carer_id"]): _instant(e["occurred_at"])
           for e in feed if e["type"] == "visit.clock_in"}
    for e in feed:
        if e["type"] == "visit.clock_out":
            assert _instant(e["occurred_at"]) > ins[(e["shift_id"], e["carer_id"])]
            assert e["carer_id"] in shifts[e["shift_id"]]["carer_ids"]


def _outcomes(**rates: float) -> Counter[str]:
    feed = generate_feed(FeedOptions(start=START, seed=9, packages=60, providers=4, days=2, **rates))
    shifts = {e["shift_id"]: e for e in feed if e["type"] == "shift.scheduled"}
    latest = {e["shift_id"]: e for e in feed if e["type"] in ("shift.scheduled", "shift.updated")}
    first_in: dict[str, datetime] = {}
    for e in feed:
        if e["type"] == "visit.clock_in":
            first_in.setdefault(e["shift_id"], _instant(e["occurred_at"]))
    cancelled = {e["shift_id"] for e in feed if e["type"] == "shift.cancelled"}
    counts: Counter[str] = Counter(shifts=len(shifts), cancelled=len(cancelled))
    for shift_id, s in latest.items():
        if shift_id in cancelled:
            continue
        if shift_id not in first_in:
            counts["missed"] += 1
        elif first_in[shift_id] - _instant(s["starts_at"]) > timedelta(minutes=15):
            counts["late"] += 1
    counts["manual"] = sum(1 for e in feed if e.get("method") == "manual")
    counts["corrected"] = sum(1 for e in feed if e["type"] == "visit.corrected")
    counts["by_person"] = sum(1 for e in feed if e.get("cancelled_by") == "person")
    counts["by_provider"] = sum(1 for e in feed if e.get("cancelled_by") == "provider")
    return counts


def test_rates_drive_lateness_misses_and_cancellations() -> None:
    calm = _outcomes(late_rate=0, miss_rate=0, short_rate=0, cancel_rate=0)
    assert calm["late"] == calm["missed"] == calm["cancelled"] == 0
    rough = _outcomes(late_rate=0.3, miss_rate=0.1, short_rate=0.1, cancel_rate=0.1)
    assert 0.2 * rough["shifts"] < rough["late"] < 0.4 * rough["shifts"]
    assert 0.05 * rough["shifts"] < rough["missed"] < 0.16 * rough["shifts"]
    assert 0.05 * rough["shifts"] < rough["cancelled"] < 0.16 * rough["shifts"]
    assert rough["by_person"] > 0 and rough["by_provider"] > 0
    assert rough["manual"] > 0 and rough["corrected"] > 0


def test_invoices_come_last_some_overstated_then_corrected_one_unproven(feed: list[dict]) -> None:
    invoices = [e for e in feed if e["type"] == "invoice.submitted"]
    assert len(invoices) == 4  # three invoices, one of them corrected
    assert feed[-len(invoices):] == invoices
    for inv in invoices:
        assert inv["total_pence"] == sum(line["amount_pence"] for line in inv["lines"])
        assert inv["period_start"] == "2026-04-06"
    versions = Counter(inv["invoice_id"] for inv in invoices)
    [corrected] = [i for i, n in versions.items() if n == 2]
    first, second = [inv for inv in invoices if inv["invoice_id"] == corrected]
    assert first["occurred_at"] < second["occurred_at"]
    # The first version bills each call over its length; the correction bills less, line for line.
    assert second["total_pence"] < first["total_pence"]
    assert [line["shift_id"] for line in second["lines"]] == [line["shift_id"] for line in first["lines"]]
    assert all(b["minutes"] < a["minutes"] for a, b in zip(first["lines"], second["lines"], strict=True))
    # Another bills a line naming no visit: unproven.
    assert sum(1 for inv in invoices for line in inv["lines"] if "shift_id" not in line) == 1


def test_some_packages_are_near_and_some_over_budget(feed: list[dict]) -> None:
    """DOMAIN.md "Budget": forecast = plan weekly spend x the weeks left (nothing spent yet, the day starting
    Monday 6 April 2026, the budget year ending 31 March 2027)."""
    weeks = ((date(2027, 3, 31) - date(2026, 4, 6)).days + 1) / 7
    levels: Counter[str] = Counter()
    for p in (e for e in feed if e["type"] == "package.approved"):
        day = {r["service_type"]: r["pence_per_hour"] for r in p["rates"] if r["band"] == "day"}
        weekly = sum(line["minutes_per_week"] * line["carers"] * day[line["service_type"]] / 60 for line in p["plan"])
        forecast = weekly * weeks
        if forecast > p["budget_pence"]:
            levels["critical"] += 1
        elif forecast > p["budget_pence"] - p["contingency_pence"]:
            levels["warning"] += 1
    assert levels["critical"] >= 1 and levels["warning"] >= 1


def test_default_start_is_the_coming_monday_at_six_london() -> None:
    wednesday = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
    assert coming_monday(wednesday, LONDON) == datetime(2026, 4, 13, 5, 0, tzinfo=UTC)
    early_monday = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    assert coming_monday(early_monday, LONDON) == datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # GMT
    assert parse_start("2026-04-06T06:00", wednesday, LONDON) == START
    assert parse_start(None, wednesday, LONDON) == datetime(2026, 4, 13, 5, 0, tzinfo=UTC)


def test_a_large_feed_names_nothing_before_it_is_registered() -> None:
    # 2,000 packages a minute apart would not fit in the day before: every approval must still
    # precede the day, so any prefix of the feed (the benchmark cuts one) holds nothing back.
    from carewatch.pipeline.references import provides, references
    from carewatch.schema.events import CareEvent, validate_event

    big = generate_feed(FeedOptions(start=START, seed=5, packages=2000, providers=40, days=1, invoices=0))
    seen: set[str] = set()
    early: list[str] = []
    for raw in big:
        event = validate_event(json.dumps(raw).encode())
        assert isinstance(event, CareEvent)
        early += [f"{event.event_id} needs {ref}" for ref in references(event) if ref not in seen]
        made = provides(event)
        if made:
            seen.add(made)
    assert early == []
    approvals = [_instant(e["occurred_at"]) for e in big if e["type"] == "package.approved"]
    assert len(approvals) == 2000 and max(approvals) < START
