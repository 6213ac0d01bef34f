"""Shift updates go out on Redis a few messages per batch, each naming up to SHIFT_IDS_PER_MESSAGE shifts."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from carewatch.alerts.bus import SHIFT_IDS_PER_MESSAGE, AlertBus, Channels, shift_ids_in

pytestmark = pytest.mark.services


def test_shift_ids_in_reads_both_forms_and_ignores_junk() -> None:
    assert shift_ids_in({"shift_ids": ["SH-1", "SH-2"]}) == ["SH-1", "SH-2"]
    assert shift_ids_in({"shift_id": "SH-9"}) == ["SH-9"]
    assert shift_ids_in({"shift_ids": ["SH-1", 7, "", None]}) == ["SH-1"]
    assert shift_ids_in({"shift_id": 7}) == [] and shift_ids_in({}) == []


async def _published(redis_url: str, shift_ids: list[str]) -> tuple[int, list[list[str]]]:
    client = aioredis.Redis.from_url(redis_url)
    channels = Channels(f"carewatch-test:{uuid.uuid4().hex[:8]}")
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channels.shift_updates)
    try:
        sent = await AlertBus(client, channels).publish_shift_updates(shift_ids)
        received: list[list[str]] = []
        async with asyncio.timeout(5):
            while len(received) < sent:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    received.append(json.loads(message["data"])["shift_ids"])
        return sent, received
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


def test_a_batch_of_updates_is_published_in_chunks(redis_url: str) -> None:
    ids = [f"SH-{n:05d}" for n in range(SHIFT_IDS_PER_MESSAGE + 3)]
    sent, received = asyncio.run(_published(redis_url, [*reversed(ids), ids[0]]))  # a repeat, out of order
    assert sent == 2
    assert received == [ids[:SHIFT_IDS_PER_MESSAGE], ids[SHIFT_IDS_PER_MESSAGE:]]


def test_nothing_to_publish_sends_nothing(redis_url: str) -> None:
    assert asyncio.run(_published(redis_url, [])) == (0, [])


def test_stopping_the_hub_is_bounded_when_its_subscription_will_not_close(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A CI run once hung in the API's shutdown: the hub's pump, cancelled, never finished closing
    # its Redis subscription. stop() must return all the same.
    import time

    from carewatch.graphql import alerts_hub
    from carewatch.graphql.alerts_hub import AlertHub

    released = asyncio.Event()

    async def stubborn(self: AlertHub, client: aioredis.Redis) -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                await released.wait()  # ignores the cancel, as a cleanup waiting on a reply would

    monkeypatch.setattr(AlertHub, "_pump", stubborn)
    monkeypatch.setattr(alerts_hub, "STOP_SECONDS", 0.5)

    async def stop_it() -> float:
        hub = AlertHub(redis_url, Channels(f"carewatch-test:{uuid.uuid4().hex[:8]}"))
        await hub.start()
        await asyncio.sleep(0.05)
        started = time.monotonic()
        async with asyncio.timeout(10):  # fails the assertion below rather than hanging
            await hub.stop()
        elapsed = time.monotonic() - started
        released.set()  # let the stubborn task end, so the loop can close
        await asyncio.sleep(0.05)
        return elapsed

    assert asyncio.run(stop_it()) < 2.0
