"""Issue "Nothing lost, nothing wrong" through BatchProcessor on a real PostgreSQL: one event's
trouble costs only that event, providers write only their own care, and DOUBLE_BOOKED_CARER and
UNKNOWN_CARER follow event time whatever the batch boundaries."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from carewatch import metrics
from carewatch.alerts.settled import sweep_settled
from carewatch.alerts.sweeps import SweepConfig
from carewatch.clock import FixedClock
from carewatch.domain import attendance
from carewatch.pipeline import processor as batches
from carewatch.pipeline.processor import BatchProcessor
from carewatch.store.db import make_pool
from integrity_feed import clock, event, lines, setup, shift
from support import make_database

pytestmark = pytest.mark.services

BEFORE = datetime(2026, 4, 1, tzinfo=UTC)  # processing clock before every visit: no absence alerts


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, dict[str, Any]]] = []

    async def __call__(self, key: bytes | None, value: bytes) -> None:
        self.records.append((key, json.loads(value)))


async def run(url: str, batches_of_lines: list[list[str]], now: datetime = BEFORE) -> tuple[Sink, list[Any]]:
    sink = Sink()
    processor = BatchProcessor(make_pool(url, max_size=2), sink, FixedClock(now))
    outcomes = []
    try:
        for batch in batches_of_lines:
            outcomes.append(await processor.handle([(None, line.encode()) for line in batch]))
    finally:
        await processor.close()
    return sink, outcomes


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def counter(name: str, **labels: str) -> float:
    value = metrics.BATCHES_FAILED.labels(**labels)._value.get() if name == "failed" else 0.0
    return float(value)


async def test_a_year_9999_instant_costs_only_its_own_event(fresh_database_url: str) -> None:
    feed = [*setup(), shift("s1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
            shift("bad", "SH-BAD", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z",
                  at="9999-12-31T23:59:00-01:00"),
            clock("i1", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z"),
            clock("o1", "out", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T10:00:00Z")]
    sink, [outcome] = await run(fresh_database_url, [lines(feed)])
    assert outcome.applied == len(feed) - 1 and outcome.rejected == 1
    assert [(r["event_id"], r["stage"]) for _, r in sink.records] == [("bad", "semantic")]
    assert query(fresh_database_url, "SELECT event_id, stage FROM rejected_events") == [("bad", "semantic")]
    assert query(fresh_database_url, "SELECT payable_seconds FROM shift_ledger WHERE shift_id = 'SH-A1'") == [(3600,)]


async def test_an_event_that_breaks_the_batch_is_found_by_splitting_and_rejected_alone(
        fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = attendance.shift_ledger

    def ledger(shift: Any, *args: Any) -> Any:
        if shift.shift_id == "SH-POISON":
            raise OverflowError("date value out of range")
        return real(shift, *args)

    monkeypatch.setattr("carewatch.pipeline.batch.shift_ledger", ledger)
    feed = [*setup()]
    for n in range(20):
        feed += [shift(f"s{n}", f"SH-{n}", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
                 clock(f"i{n}", "in", f"SH-{n}", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z")]
    feed.insert(17, shift("poison", "SH-POISON", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z",
                          "2026-04-06T10:00:00Z"))
    splits = counter("failed", reason="split")
    sink, [outcome] = await run(fresh_database_url, [lines(feed)])
    assert outcome.applied == len(feed) - 1
    assert [(r["event_id"], r["stage"], r["reason"]) for _, r in sink.records] == [
        ("poison", "internal", "could not be applied: LedgerRebuildError: the ledger of shift SH-POISON cannot be "
                               "computed: OverflowError: date value out of range")]
    assert query(fresh_database_url, "SELECT count(*) FROM shift_ledger") == [(20,)]
    assert query(fresh_database_url, "SELECT stage FROM rejected_events WHERE event_id = 'poison'") == [("internal",)]
    assert counter("failed", reason="split") > splits


async def test_a_failing_database_is_retried_with_the_partition_reported_stuck(
        fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = batches.apply_batch
    seen: list[float] = []

    async def flaky(conn: Any, events: Any, now: Any) -> Any:
        seen.append(metrics.PARTITION_STUCK.labels(topic="care-events", partition="3")._value.get())
        if len(seen) < 3:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await real(conn, events, now)

    monkeypatch.setattr(batches, "apply_batch", flaky)
    sink = Sink()
    processor = BatchProcessor(make_pool(fresh_database_url, max_size=2), sink, FixedClock(BEFORE),
                               max_backoff_seconds=0.1)
    before = counter("failed", reason="database")
    try:
        outcome = await processor.handle([(None, line.encode()) for line in lines(setup())], [("care-events", 3)])
    finally:
        await processor.close()
    assert outcome.applied == len(setup()) and sink.records == []
    assert seen == [0.0, 1.0, 1.0]  # stuck while retrying ...
    assert metrics.PARTITION_STUCK.labels(topic="care-events", partition="3")._value.get() == 0.0  # ... not after
    assert counter("failed", reason="database") == before + 2


async def test_a_provider_cannot_write_into_another_providers_package_or_shift(fresh_database_url: str) -> None:
    own = shift("a-s", "SH-A", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z")
    hostile = [
        # Birch names itself but Acorn's package: a shift, a visit on it, an invoice, an activity.
        shift("b-s", "SH-B", "PKG-100", "PRV-BIRCH", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
        clock("b-in", "in", "SH-A", "PKG-100", "PRV-BIRCH", "CR-001", "2026-04-06T09:00:00Z"),
        clock("b-out", "out", "SH-A", "PKG-100", "PRV-BIRCH", "CR-001", "2026-04-06T15:00:00Z"),
        event("b-inv", "invoice.submitted", "2026-05-01T09:00:00Z", invoice_id="INV-B", package_id="PKG-100",
              provider_id="PRV-BIRCH", period_start="2026-04-01", period_end="2026-04-30", lines=[], total_pence=1),
        event("b-act", "activity.logged", "2026-04-06T09:00:00Z", carer_id="CR-001", provider_id="PRV-BIRCH",
              package_id="PKG-100", kind="travel", minutes=30),
        # Birch re-announces Acorn's shift, later, on its own package: the shift stays Acorn's.
        shift("b-move", "SH-A", "PKG-200", "PRV-BIRCH", "2026-04-06T11:00:00Z", "2026-04-06T12:00:00Z",
              at="2026-04-06T06:00:00Z", kind="shift.updated"),
    ]
    sink, _ = await run(fresh_database_url, [lines([*setup(), own]), lines(hostile)])
    assert sorted((r["event_id"], r["stage"]) for _, r in sink.records) == sorted(
        (e["event_id"], "scope") for e in hostile)
    assert query(fresh_database_url, "SELECT shift_id, package_id, provider_id, starts_at FROM shifts") == [
        ("SH-A", "PKG-100", "PRV-ACORN", datetime(2026, 4, 6, 9, tzinfo=UTC))]
    assert query(fresh_database_url, "SELECT coalesce(sum(spend_pence), 0) FROM shift_ledger") == [(0,)]
    assert query(fresh_database_url, "SELECT count(*) FROM clock_events") == [(0,)]
    assert query(fresh_database_url, "SELECT count(*) FROM invoices") == [(0,)]
    reasons = dict(query(fresh_database_url, "SELECT event_id, reason FROM rejected_events"))
    assert reasons["b-s"] == "provider_id: 'PRV-BIRCH' is not the provider of package 'PKG-100' ('PRV-ACORN')"
    assert reasons["b-move"].startswith("shift 'SH-A' belongs to package 'PKG-100' of provider 'PRV-ACORN'")


def _double_booking_feed() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """CR-001 works for Acorn (PKG-100) and Birch (PKG-200): visits that overlap twice for real
    (09:30-10:00 and 14:00-14:10) and once back to back (no overlap)."""
    carer_b = dict(setup()[2], event_id="b-cr", provider_id="PRV-BIRCH", occurred_at="2026-03-01T09:00:00Z")
    a = [shift("sa1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
         clock("a1i", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z"),
         clock("a1o", "out", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T10:00:00Z"),
         shift("sa2", "SH-A2", "PKG-100", "PRV-ACORN", "2026-04-06T13:00:00Z", "2026-04-06T14:10:00Z"),
         clock("a2i", "in", "SH-A2", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T13:00:00Z"),
         clock("a2o", "out", "SH-A2", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T14:10:00Z"),
         shift("sa3", "SH-A3", "PKG-100", "PRV-ACORN", "2026-04-06T16:00:00Z", "2026-04-06T17:00:00Z"),
         clock("a3i", "in", "SH-A3", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T16:00:00Z"),
         clock("a3o", "out", "SH-A3", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T17:00:00Z")]
    b = [shift("sb1", "SH-B1", "PKG-200", "PRV-BIRCH", "2026-04-06T09:30:00Z", "2026-04-06T10:30:00Z"),
         clock("b1i", "in", "SH-B1", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T09:30:00Z"),
         clock("b1o", "out", "SH-B1", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T10:30:00Z"),
         shift("sb2", "SH-B2", "PKG-200", "PRV-BIRCH", "2026-04-06T14:00:00Z", "2026-04-06T15:00:00Z"),
         clock("b2i", "in", "SH-B2", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T14:00:00Z"),
         clock("b2o", "out", "SH-B2", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T15:00:00Z"),
         shift("sb3", "SH-B3", "PKG-200", "PRV-BIRCH", "2026-04-06T17:00:00Z", "2026-04-06T18:00:00Z"),
         clock("b3i", "in", "SH-B3", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T17:00:00Z"),
         clock("b3o", "out", "SH-B3", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T18:00:00Z")]
    return [*setup(), carer_b], a, b


def _alerts(url: str) -> Counter[tuple[Any, ...]]:
    return Counter(query(url, "SELECT kind, subject_id, status, details ->> 'overlap_start' FROM alerts"
                              " WHERE kind = 'DOUBLE_BOOKED_CARER'"))


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_double_booking_is_the_same_whatever_the_batches_and_partition_order(
        seed: int, fresh_database_url: str, database_url: str) -> None:
    base, a, b = _double_booking_feed()
    # Reference: everything in one batch.
    await run(database_url, [lines([*base, *a, *b])])
    reference = _alerts(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE events, shifts, clock_events, alerts, alert_history, shift_ledger, packages,"
                     " carers, providers, commissioners, held_events, rejected_events")
    assert reference == Counter({("DOUBLE_BOOKED_CARER", "CR-001", "auto_resolved", "2026-04-06T09:30:00+00:00"): 1,
                                 ("DOUBLE_BOOKED_CARER", "CR-001", "auto_resolved", "2026-04-06T14:00:00+00:00"): 1})
    # The two packages' partitions interleaved at random, in random batch sizes.
    rng = random.Random(seed)
    a_left, b_left, order = list(a), list(b), []
    while a_left or b_left:
        source = a_left if b_left == [] or (a_left and rng.random() < 0.5) else b_left
        order.append(source.pop(0))
    cuts = sorted(rng.sample(range(1, len(order)), 5))
    chunks = [order[i:j] for i, j in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    await run(fresh_database_url, [lines(base), *(lines(c) for c in chunks)])
    assert _alerts(fresh_database_url) == reference
    history = query(fresh_database_url, "SELECT h.status FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
                                        " WHERE a.kind = 'DOUBLE_BOOKED_CARER' ORDER BY h.id")
    assert [s for (s,) in history] == ["open", "auto_resolved"] * 2


async def test_a_live_overlap_is_raised_and_a_false_one_resolved_as_late_data(fresh_database_url: str) -> None:
    base, _, _ = _double_booking_feed()
    now = datetime(2026, 4, 6, 9, 45, tzinfo=UTC)
    first = [shift("sa1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
             clock("a1i", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z"),
             shift("sb1", "SH-B1", "PKG-200", "PRV-BIRCH", "2026-04-06T09:30:00Z", "2026-04-06T10:30:00Z"),
             clock("b1i", "in", "SH-B1", "PKG-200", "PRV-BIRCH", "CR-001", "2026-04-06T09:30:00Z")]
    # Acorn's clock-out arrives late: CR-001 had left SH-A1 at 09:20, before SH-B1 began.
    late = [clock("a1o", "out", "SH-A1", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:20:00Z")]
    _, outcomes = await run(fresh_database_url, [lines(base), lines(first), lines(late)], now=now)
    raised = [a for a in outcomes[1].alerts if a.kind == "DOUBLE_BOOKED_CARER"]
    assert [(a.status, a.subject_id) for a in raised] == [("open", "CR-001")]
    resolved = [a for a in outcomes[2].alerts if a.kind == "DOUBLE_BOOKED_CARER"]
    assert [(a.status, a.caused_by_late_data) for a in resolved] == [("auto_resolved", True)]


async def settled(url: str, now: datetime) -> list[Any]:
    """The scheduler's settled judgements at `now` (UNKNOWN_CARER, PAY_BELOW_MINIMUM)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await sweep_settled(conn, now, SweepConfig())


async def test_unknown_carer_waits_for_the_registration_and_resolves_when_it_comes_late(
        fresh_database_url: str) -> None:
    base, _, _ = _double_booking_feed()
    visit = [shift("sa1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
             clock("n1i", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-NEW", "2026-04-06T09:00:00Z")]
    registration = dict(base[2], event_id="cr-new", carer_id="CR-NEW")
    _, outcomes = await run(fresh_database_url, [lines(base), lines(visit)])
    assert outcomes[1].alerts == ()
    assert await settled(fresh_database_url, BEFORE + timedelta(seconds=30)) == []
    raised = await settled(fresh_database_url, BEFORE + timedelta(seconds=60))
    assert [(a.kind, a.status, a.subject_id) for a in raised] == [("UNKNOWN_CARER", "open", "CR-NEW@SH-A1")]
    assert await settled(fresh_database_url, BEFORE + timedelta(hours=1)) == []  # raised once
    _, late = await run(fresh_database_url, [lines([registration])])
    assert [(a.kind, a.status, a.caused_by_late_data) for a in late[0].alerts] == [
        ("UNKNOWN_CARER", "auto_resolved", True)]


async def test_a_registration_arriving_within_the_wait_raises_no_unknown_carer(fresh_database_url: str) -> None:
    """The clock-in read before the registration (another partition, a restart): no UNKNOWN_CARER at all,
    the same alerts as the other order of arrival."""
    base, _, _ = _double_booking_feed()
    visit = [shift("sa1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
             clock("n1i", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-NEW", "2026-04-06T09:00:00Z")]
    registration = dict(base[2], event_id="cr-new", carer_id="CR-NEW")
    _, outcomes = await run(fresh_database_url, [lines(base), lines(visit), lines([registration])])
    assert {a.kind for o in outcomes for a in o.alerts} == {"BUDGET_AT_RISK"}  # the setup's, nothing else
    assert await settled(fresh_database_url, BEFORE + timedelta(days=1)) == []
    assert query(fresh_database_url, "SELECT count(*) FROM settling WHERE kind = 'UNKNOWN_CARER'") == [(0,)]
    assert query(fresh_database_url, "SELECT count(*) FROM alerts WHERE kind = 'UNKNOWN_CARER'") == [(0,)]


async def test_competences_are_judged_when_the_registration_arrives_after_the_clock_in(
        fresh_database_url: str) -> None:
    """A clock-in read before the carer's registration waits; the registration judges the competencies
    it brings, as reading the registration first would have; after the wait, it also resolves the
    UNKNOWN_CARER the sweep raised meanwhile."""
    base, _, _ = _double_booking_feed()
    hoist = dict(shift("sa1", "SH-A1", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
                 required_competencies=["hoist", "peg_feeding"])
    visit = [hoist, clock("n1i", "in", "SH-A1", "PKG-100", "PRV-ACORN", "CR-NEW", "2026-04-06T09:00:00Z")]
    registration = dict(base[2], event_id="cr-new", carer_id="CR-NEW", competencies=["hoist"])
    _, within = await run(fresh_database_url, [lines(base), lines(visit), lines([registration])])
    assert within[1].alerts == ()
    assert [(a.kind, a.status, a.subject_id, a.details) for a in within[2].alerts] == [
        ("COMPETENCE_MISMATCH", "open", "CR-NEW@SH-A1", {"missing": ["peg_feeding"]})]

    url = make_database()
    await run(url, [lines(base), lines(visit)])
    assert [(a.kind, a.status) for a in await settled(url, BEFORE + timedelta(minutes=5))] == [
        ("UNKNOWN_CARER", "open")]
    _, late = await run(url, [lines([registration])])
    assert sorted((a.kind, a.status, a.subject_id) for a in late[0].alerts) == [
        ("COMPETENCE_MISMATCH", "open", "CR-NEW@SH-A1"), ("UNKNOWN_CARER", "auto_resolved", "CR-NEW@SH-A1")]
    mismatch = next(a for a in late[0].alerts if a.kind == "COMPETENCE_MISMATCH")
    assert mismatch.details == {"missing": ["peg_feeding"]}
    # The same feed with the registration read first: the same COMPETENCE_MISMATCH, and no UNKNOWN_CARER.
    url = make_database()
    _, first = await run(url, [lines([*base, registration]), lines(visit)])
    assert [(a.kind, a.status, a.subject_id, a.details) for a in first[1].alerts] == [
        ("COMPETENCE_MISMATCH", "open", "CR-NEW@SH-A1", {"missing": ["peg_feeding"]})]
    assert await settled(url, BEFORE + timedelta(days=1)) == []


async def test_shift_ownership_follows_event_time_whatever_the_partition_order(
        fresh_database_url: str, database_url: str) -> None:
    """Birch re-announces Acorn's shift in its own package, 30 minutes later by event time, and its
    partition is read first: Acorn's earlier announcement still owns the shift, and the figures and
    refusals are those of the other order."""
    acorn = [shift("a-s", "SH-X", "PKG-100", "PRV-ACORN", "2026-04-06T09:00:00Z", "2026-04-06T10:00:00Z"),
             clock("a-in", "in", "SH-X", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T09:00:00Z"),
             clock("a-out", "out", "SH-X", "PKG-100", "PRV-ACORN", "CR-001", "2026-04-06T10:00:00Z")]
    birch = [shift("b-s", "SH-X", "PKG-200", "PRV-BIRCH", "2026-04-06T11:00:00Z", "2026-04-06T12:00:00Z",
                   at="2026-04-06T05:30:00Z")]
    snapshots = []
    orders = [[acorn, birch],  # Acorn's partition first: Birch's is refused on arrival
              [birch, acorn[1:], acorn[:1]],  # Birch first, Acorn's clock events next (refused), then its shift
              [birch + acorn]]  # all in one batch, Birch first
    for n, order in enumerate(orders):
        url = fresh_database_url if n == 0 else database_url
        if n:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE events, shifts, clock_events, alerts, alert_history, shift_ledger,"
                             " packages, carers, providers, commissioners, held_events, rejected_events")
        await run(url, [lines(setup()), *(lines(chunk) for chunk in order)])
        snapshots.append((
            query(url, "SELECT shift_id, package_id, provider_id, starts_at FROM shifts"),
            query(url, "SELECT shift_id, payable_seconds, spend_pence FROM shift_ledger"),
            query(url, "SELECT event_id FROM events WHERE type LIKE 'shift.%' OR type LIKE 'visit.%' ORDER BY 1"),
            query(url, "SELECT event_id, stage FROM rejected_events ORDER BY 1")))
    assert snapshots[0] == (
        [("SH-X", "PKG-100", "PRV-ACORN", datetime(2026, 4, 6, 9, tzinfo=UTC))],
        [("SH-X", 3600, 4800)],
        [("a-in",), ("a-out",), ("a-s",)],
        [("b-s", "scope")])
    assert snapshots[1] == snapshots[0]
    assert snapshots[2] == snapshots[0]
