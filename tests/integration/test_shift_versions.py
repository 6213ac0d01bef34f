"""Shift versions in one batch (store/entities.py): the batch's shifts are merged in one statement, and
the result is what applying each version in turn would leave, whatever the batch holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from carewatch.pipeline.batch import apply_batch
from carewatch.schema.events import CareEvent
from carewatch.store.entities import first_versions, latest_versions
from support import care_event, make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)


def _shift(n: str, kind: str, at: str, starts: str, service: str) -> CareEvent:
    return care_event(n, kind, at, shift_id="SH", package_id="PKG", provider_id="PRV", starts_at=starts,
                  ends_at=starts.replace("08:", "09:"), service_type=service)


def _setup() -> list[CareEvent]:
    return [
        care_event("c", "commissioner.registered", "2026-04-01T08:00:00Z", commissioner_id="LA", name="LA"),
        care_event("p", "provider.registered", "2026-04-01T08:00:00Z", provider_id="PRV", name="PRV"),
        care_event("pkg", "package.approved", "2026-04-01T08:00:00Z", package_id="PKG", commissioner_id="LA",
               provider_id="PRV", person={"person_id": "P", "nhs_number": "9434765919"},
               period_start="2026-04-01", period_end="2026-06-30", budget_pence=10_000_000,
               plan=[{"service_type": "personal_care", "minutes_per_week": 420, "carers": 1}],
               rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 1800}]),
    ]


def _stored(url: str) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT service_type, starts_at, scheduled_at, announced_at, announced_by FROM shifts"
                           " WHERE shift_id = 'SH'").fetchone()
    assert row is not None
    return tuple(row)


async def test_the_latest_version_wins_and_the_earliest_announcement_stays() -> None:
    # Two versions at 10:00 (ids "v-a" and "v-c") after one at 09:00: applied one by one in
    # (occurred_at, event_id) order under "scheduled_at <", "v-a" is the one left.
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, [
            *_setup(),
            _shift("v-b", "shift.scheduled", "2026-04-10T09:00:00Z", "2026-04-14T08:00:00Z", "personal_care"),
            _shift("v-c", "shift.updated", "2026-04-10T10:00:00Z", "2026-04-15T08:00:00Z", "domestic"),
            _shift("v-a", "shift.updated", "2026-04-10T10:00:00Z", "2026-04-16T08:00:00Z", "companionship"),
        ], NOW)
    service, starts, scheduled, announced_at, announced_by = _stored(url)
    assert service == "companionship" and starts == datetime(2026, 4, 16, 8, tzinfo=UTC)
    assert scheduled == datetime(2026, 4, 10, 10, tzinfo=UTC)
    assert (announced_at, announced_by) == (datetime(2026, 4, 10, 9, tzinfo=UTC), "v-b")


async def test_a_later_batch_with_older_versions_changes_only_the_announcement() -> None:
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, [*_setup(), _shift("v-5", "shift.scheduled", "2026-04-10T15:00:00Z",
                                                   "2026-04-14T08:00:00Z", "personal_care")], NOW)
        # Two announcements older than the stored one in one batch: the earliest of them is kept.
        await apply_batch(conn, [
            _shift("v-2", "shift.updated", "2026-04-10T12:00:00Z", "2026-04-15T08:00:00Z", "domestic"),
            _shift("v-1", "shift.scheduled", "2026-04-10T11:00:00Z", "2026-04-16T08:00:00Z", "companionship"),
        ], NOW)
    service, _, scheduled, announced_at, announced_by = _stored(url)
    assert service == "personal_care" and scheduled == datetime(2026, 4, 10, 15, tzinfo=UTC)
    assert (announced_at, announced_by) == (datetime(2026, 4, 10, 11, tzinfo=UTC), "v-1")


def test_versions_are_reduced_as_one_by_one_application_would() -> None:
    t1, t2 = datetime(2026, 4, 10, 9, tzinfo=UTC), datetime(2026, 4, 10, 10, tzinfo=UTC)
    rows = [("A", "1", t1), ("B", "2", t1), ("A", "3", t2), ("A", "4", t2), ("B", "5", t1)]
    padded = [(sid, n, *([None] * 7), at, at, n) for sid, n, at in rows]
    assert [(r[0], r[1]) for r in latest_versions(padded)] == [("A", "3"), ("B", "2")]
    assert [(r[0], r[1]) for r in first_versions(padded)] == [("A", "1"), ("B", "2")]
