"""The worker's Kafka consumer waits at most CAREWATCH_FETCH_MAX_WAIT_MS per fetch, not faust's 1,500 ms."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from carewatch.settings import Settings
from carewatch.stream.app import create_app


async def _worker_consumer_wait(settings: Settings) -> int:
    app = create_app(settings)
    thread = app.consumer._thread  # the thread faust builds the aiokafka consumer in
    consumer = thread._create_worker_consumer(app.transport)
    try:
        return int(consumer._fetch_max_wait_ms)
    finally:
        await consumer.stop()  # never started: this only releases its client


@pytest.mark.parametrize("wait_ms", [100, 25])
def test_the_worker_consumer_uses_the_configured_fetch_wait(wait_ms: int) -> None:
    settings = replace(Settings(), fetch_max_wait_ms=wait_ms)
    assert asyncio.run(_worker_consumer_wait(settings)) == wait_ms


def test_the_default_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAREWATCH_FETCH_MAX_WAIT_MS", raising=False)
    assert Settings().fetch_max_wait_ms == 100
    monkeypatch.setenv("CAREWATCH_FETCH_MAX_WAIT_MS", "40")
    assert asyncio.run(_worker_consumer_wait(Settings())) == 40
