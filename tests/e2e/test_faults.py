"""The fault suite, short form: a smaller feed run cleanly and under four faults (kill -9 of the worker,
PostgreSQL stopped, Redis killed, the broker restarted), each run on services of its own; every ledger
row, GraphQL figure, event, rejection and alert must be equal (`carewatch faults` is the long form)."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewatch.faults.feed import FeedShape, build_feed
from carewatch.faults.run import Plan
from carewatch.faults.suite import SHORT_FAULTS, report, run_suite

pytestmark = pytest.mark.services

COMPARED = {"shift_ledger rows", "shifts", "events (id, type, occurred_at, payload)", "held_events",
            "rejected_events (event/raw, stage)", "alerts (multiset)", "GraphQL package delivery and budget"}


def test_a_feed_under_faults_gives_what_it_gives_cleanly(tmp_path: Path) -> None:
    feed = build_feed(FeedShape(packages=48, providers=4, overlaps=8))
    plan = Plan(feed, tmp_path, rate=150.0, postgres_outage=8.0, chunks=len(SHORT_FAULTS) + 1, stall_seconds=60.0)
    result = run_suite(plan, SHORT_FAULTS)
    print(report(result, plan))

    assert [r.label for r in result.runs] == ["run 1", "run 2"]
    assert all(r.snapshot is not None for r in result.runs), [p for r in result.runs for p in r.problems]
    assert {c.name for c in result.comparisons} == COMPARED
    faults = result.runs[1].faults
    assert [f.name for f in faults] == list(SHORT_FAULTS)
    assert all(f.caught_up_after is not None for f in faults), [f.line() for f in faults]
    assert not [p for r in result.runs for p in r.problems]
    # The feed has DOUBLE_BOOKED_CARER cases, so equal alerts include them.
    assert feed.counts["double_booked_carers"] >= 8
    for comparison in result.comparisons:
        assert comparison.ok, f"{comparison.line()}\n" + "\n".join(comparison.differences)
