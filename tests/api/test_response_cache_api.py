"""The GraphQL response cache in the real app: a cached page changes once an event is applied through the
pipeline or a mutation runs (in this process or another), and tokens never get each other's responses.

The TTL is a minute here, so a page that changes within these tests' few seconds changed because the
write was announced, not because its entry expired.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import psycopg
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from tests.api.conftest import NOW, token_for
from tests.integration.alert_fixtures import START, add_package, add_shift

from carewatch.alerts.bus import AlertBus, Channels
from carewatch.alerts.data_version import DataVersion, batch_listener, data_version_channel
from carewatch.alerts.lease import Lease
from carewatch.alerts.scheduler import AlertScheduler
from carewatch.alerts.sweeps import SweepConfig, sweep_absences
from carewatch.clock import FixedClock
from carewatch.pipeline.outcome import BatchOutcome
from carewatch.pipeline.processor import BatchProcessor
from carewatch.settings import Settings
from carewatch.store.db import make_pool
from carewatch.stream.worker import build_worker_app
from carewatch.web import create_app
from support import ROOT

pytestmark = pytest.mark.services

TTL_MS = 60_000
PAGE = "query Page { packages(first: 50) { edges { node { id budgetPence } } } }"
ALERTS = "query Alerts { alerts { edges { node { id status } } } }"
ACK = 'mutation Ack($id: ID!) { acknowledgeAlert(id: $id, note: "on it") { id status } }'


def hits() -> float:
    return REGISTRY.get_sample_value("carewatch_response_cache_total", {"result": "hit"}) or 0.0


def cached_settings(database_url: str, redis_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, response_cache_ttl_ms=TTL_MS)


def post(client: TestClient, query: str, headers: dict[str, str], **variables: Any) -> Any:
    response = client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def served_from_cache(client: TestClient, query: str, headers: dict[str, str]) -> Any:
    """Ask until the answer comes from the cache (the app listens for changes a moment after it starts)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        before = hits()
        data = post(client, query, headers)
        if hits() > before:
            return data
        time.sleep(0.05)
    raise AssertionError("the response cache never served the query")


def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the cached page did not change"
        time.sleep(0.05)


@contextmanager
def api(settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client


def ids(data: Any) -> list[str]:
    return [e["node"]["id"] for e in data["packages"]["edges"]]


NEW_PACKAGE = {
    "event_id": "cache-test-pkg-200",
    "type": "package.approved",
    "occurred_at": "2026-04-10T10:00:00Z",
    "package_id": "PKG-200",
    "commissioner_id": "LA-WIRRAL",
    "provider_id": "PRV-ACORN",
    "mechanism": "ISF",
    "person": {"person_id": "P-200", "nhs_number": "9434765919", "location": {"lat": 53.4, "lon": -3.0}},
    "period_start": "2026-04-01",
    "period_end": "2027-03-31",
    "budget_pence": 1_000_000,
    "contingency_pence": 10_000,
    "plan": [{"service_type": "personal_care", "minutes_per_week": 60, "carers": 1}],
    "rates": [{"service_type": "personal_care", "band": "day", "pence_per_hour": 3000}],
}


async def apply_through_pipeline(settings: Settings, event: dict[str, Any]) -> None:
    """One batch through the pipeline, with the worker's after-commit announcement (stream/worker.py)."""
    pool = make_pool(settings.database_url, min_size=1, max_size=2)
    client = aioredis.Redis.from_url(settings.redis_url)

    async def no_dead_letters(key: bytes | None, value: bytes) -> None:
        raise AssertionError(f"rejected: {value!r}")

    processor = BatchProcessor(pool, no_dead_letters, FixedClock(NOW))
    announcer = batch_listener(DataVersion(client, data_version_channel(settings), "worker"))
    processor.listeners.append(announcer)
    try:
        outcome = await processor.handle([(None, json.dumps(event).encode())])
        assert outcome.applied == 1
        await announcer.drain()  # sent from a task of its own, as in the worker
    finally:
        await processor.close()
        await client.aclose()


def test_a_cached_page_changes_once_an_event_is_applied_through_the_pipeline(
    seeded_database_url: str, redis_url: str
) -> None:
    settings = cached_settings(seeded_database_url, redis_url)
    commissioner = token_for(seeded_database_url, "commissioner", "LA-WIRRAL")
    with api(settings, FixedClock(NOW)) as client:
        first = served_from_cache(client, PAGE, commissioner)
        assert ids(first) == ["PKG-100"]
        # A write nobody announces is not seen while the entry lives: this page really is the cached one.
        with psycopg.connect(seeded_database_url, autocommit=True) as db:
            db.execute("UPDATE packages SET budget_pence = 1 WHERE package_id = 'PKG-100'")
        assert post(client, PAGE, commissioner) == first
        asyncio.run(apply_through_pipeline(settings, NEW_PACKAGE))
        until(lambda: ids(post(client, PAGE, commissioner)) == ["PKG-100", "PKG-200"])
        budgets = [e["node"]["budgetPence"] for e in post(client, PAGE, commissioner)["packages"]["edges"]]
        assert budgets == [1, 1_000_000]


def test_a_mutation_empties_the_cache_of_its_process_at_once_and_of_the_others_soon(
    fresh_database_url: str, redis_url: str
) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-1")

    async def raise_late_start() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await sweep_absences(conn, START + timedelta(minutes=20), SweepConfig())

    asyncio.run(raise_late_start())
    settings = cached_settings(url, redis_url)
    lead = token_for(url, "safeguarding", "LA-1")
    clock = FixedClock(START + timedelta(hours=1))
    with api(settings, clock) as one, api(settings, clock) as other:
        (edge,) = served_from_cache(one, ALERTS, lead)["alerts"]["edges"]
        assert edge["node"]["status"] == "open"
        assert served_from_cache(other, ALERTS, lead)["alerts"]["edges"][0]["node"]["status"] == "open"
        acked = post(one, ACK, lead, id=edge["node"]["id"])["acknowledgeAlert"]
        assert acked["status"] == "acknowledged"
        # The process that ran the mutation: at once, no waiting.
        assert post(one, ALERTS, lead)["alerts"]["edges"][0]["node"]["status"] == "acknowledged"
        # Another process: when the announcement arrives over Redis.
        until(lambda: post(other, ALERTS, lead)["alerts"]["edges"][0]["node"]["status"] == "acknowledged")


def test_tokens_never_get_each_others_cached_responses(seeded_database_url: str, redis_url: str) -> None:
    url = seeded_database_url
    settings = cached_settings(url, redis_url)
    wirral = token_for(url, "commissioner", "LA-WIRRAL")
    wirral_too = token_for(url, "commissioner", "LA-WIRRAL")
    sefton = token_for(url, "commissioner", "LA-SEFTON")
    acorn = token_for(url, "provider", "PRV-ACORN")
    other_provider = token_for(url, "provider", "PRV-ELSEWHERE")
    me = "{ me { role commissionerId providerId } }"
    with api(settings, FixedClock(NOW)) as client:
        assert ids(served_from_cache(client, PAGE, wirral)) == ["PKG-100"]
        before = hits()
        assert ids(post(client, PAGE, sefton)) == []  # same document and variables, another reach
        assert ids(post(client, PAGE, other_provider)) == []
        assert hits() == before  # none of them was served another token's entry
        assert ids(served_from_cache(client, PAGE, sefton)) == []
        assert ids(served_from_cache(client, PAGE, acorn)) == ["PKG-100"]
        assert ids(served_from_cache(client, PAGE, wirral)) == ["PKG-100"]
        # Two tokens of one reach keep their own entries too.
        before = hits()
        assert ids(post(client, PAGE, wirral_too)) == ["PKG-100"]
        assert hits() == before
        assert served_from_cache(client, me, sefton)["me"] == {
            "role": "commissioner",
            "commissionerId": "LA-SEFTON",
            "providerId": None,
        }
        assert served_from_cache(client, me, acorn)["me"] == {
            "role": "provider",
            "commissionerId": None,
            "providerId": "PRV-ACORN",
        }


def test_errors_and_request_errors_are_never_kept(seeded_database_url: str, redis_url: str) -> None:
    settings = cached_settings(seeded_database_url, redis_url)
    admin = token_for(seeded_database_url, "admin")
    with api(settings, FixedClock(NOW)) as client:
        served_from_cache(client, PAGE, admin)  # the cache is live
        before = hits()
        for _ in range(3):
            bad = client.post(
                "/graphql", json={"query": "{ packages(first: 501) { edges { node { id } } } }"}, headers=admin
            )
            assert bad.json().get("errors")
            broken = client.post("/graphql", json={"query": "{ nope }"}, headers=admin)
            assert broken.json().get("errors")
        assert hits() == before


def test_a_moved_processing_clock_is_a_new_entry(seeded_database_url: str, redis_url: str) -> None:
    settings = cached_settings(seeded_database_url, redis_url)
    admin = token_for(seeded_database_url, "admin")
    clock = FixedClock(NOW)
    query = "{ clock { now } }"
    with api(settings, clock) as client:
        first = served_from_cache(client, query, admin)["clock"]["now"]
        clock.advance(3600)
        later = post(client, query, admin)["clock"]["now"]
        assert later != first


class Announcements:
    """Messages on a deployment's data-version channel, read by a plain Redis subscriber."""

    def __init__(self, settings: Settings) -> None:
        self.client = redis.Redis.from_url(settings.redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(data_version_channel(settings))

    def take(self, seconds: float = 3.0) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.1)
            if message is not None:
                got.append(json.loads(message["data"]))
        return got

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


async def test_the_worker_announces_after_a_batch_that_changed_reads(fresh_database_url: str, redis_url: str) -> None:
    settings = Settings(database_url=fresh_database_url, redis_url=redis_url)
    app, processor, _ = build_worker_app(settings)
    [open_resources] = [t for t in app._app_tasks if t.__name__ == "open_resources"]
    await open_resources()
    heard = Announcements(settings)
    try:
        await processor._notify(BatchOutcome(duplicates=5))  # nothing a query reads changed
        await processor._notify(BatchOutcome(applied=2, affected_shift_ids=("SH-1",)))
        assert await asyncio.to_thread(heard.take, 1.0) == [{"source": "worker"}]
    finally:
        heard.close()
        await app.on_before_shutdown.send()


def test_thresholds_set_announces_after_its_commit(fresh_database_url: str, redis_url: str) -> None:
    settings = Settings(database_url=fresh_database_url, redis_url=redis_url)
    heard = Announcements(settings)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "carewatch", "thresholds", "set", "--commissioner", "LA-1", "late_start_minutes=20"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CAREWATCH_DATABASE_URL": fresh_database_url, "CAREWATCH_REDIS_URL": redis_url},
        )
        assert done.returncode == 0, done.stderr
        assert heard.take(1.0) == [{"source": "thresholds"}]
    finally:
        heard.close()


async def test_a_sweep_that_changed_an_alert_announces(fresh_database_url: str, redis_url: str) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-1")
    settings = Settings(database_url=url, redis_url=redis_url)
    client = aioredis.Redis.from_url(redis_url)
    pool = make_pool(url, min_size=1, max_size=2)
    await pool.open(wait=True)
    clock = FixedClock(START + timedelta(minutes=5))
    channels = Channels.for_settings(settings)
    scheduler = AlertScheduler(
        pool,
        AlertBus(client, channels, source="sweep"),
        Lease(client, channels.scheduler_lease, 3000),
        clock,
        SweepConfig(),
        data_version=DataVersion(client, data_version_channel(settings), "sweep"),
    )
    heard = Announcements(settings)
    try:
        await scheduler.lease.tick()
        assert await scheduler.sweep_fast() == []  # on time so far: nothing changed, nothing said
        clock.advance(20 * 60)
        assert [a.kind for a in await scheduler.sweep_fast()] == ["LATE_START"]
        assert await asyncio.to_thread(heard.take, 1.0) == [{"source": "sweep"}]
    finally:
        heard.close()
        await scheduler.lease.release()
        await pool.close()
        await client.aclose()


def count(result: str) -> float:
    return REGISTRY.get_sample_value("carewatch_response_cache_total", {"result": result}) or 0.0


def test_a_hit_late_in_its_entry_s_life_has_the_page_made_again_in_the_background(
        seeded_database_url: str, redis_url: str) -> None:
    settings = Settings(database_url=seeded_database_url, redis_url=redis_url, response_cache_ttl_ms=4000)
    admin = token_for(seeded_database_url, "admin")
    with api(settings, FixedClock(NOW)) as client:
        served_from_cache(client, PAGE, admin)
        made = time.monotonic()  # the entry was made a moment before this
        misses, refreshes = count("miss"), count("refresh")
        time.sleep(max(0.0, made + 3.1 - time.monotonic()))  # past 75% of its life
        post(client, PAGE, admin)
        assert count("refresh") == refreshes + 1
        time.sleep(max(0.0, made + 4.2 - time.monotonic()))  # the first entry has expired by now
        before = hits()
        post(client, PAGE, admin)
        assert hits() == before + 1  # served by the entry the refresh made
        assert count("miss") == misses
