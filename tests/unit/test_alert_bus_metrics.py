"""Alerts are counted as raised by kind and by what raised them, once each, when they are published; a
Redis that is away loses no count and is said once when it goes and once when it comes back."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from carewatch.alerts.bus import AlertBus, Channels
from carewatch.alerts.record import AlertRecord

NOW = datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
RAISED = AlertRecord(1, "SHORT_VISIT", "warning", "open", "visit", "SH-1:CR-1", NOW, None, NOW, "short", "PKG-1",
                     "SH-1", "CR-1", "PRV-A", "LA-1", False, {})


class Pipeline:
    def __init__(self, client: FlakyRedis) -> None:
        self.client = client

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def publish(self, channel: str, message: str) -> None:
        self.client.sent.append(message)

    async def execute(self) -> None:
        if self.client.away:
            raise aioredis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


class FlakyRedis:
    def __init__(self) -> None:
        self.away = False
        self.sent: list[str] = []

    def pipeline(self, transaction: bool = False) -> Pipeline:
        return Pipeline(self)


def _raised(kind: str, source: str) -> float:
    return REGISTRY.get_sample_value("carewatch_alerts_raised_total", {"kind": kind, "source": source}) or 0.0


async def test_raised_alerts_are_counted_by_kind_and_source_and_outages_said_once(
        caplog: pytest.LogCaptureFixture) -> None:
    client: Any = FlakyRedis()
    bus = AlertBus(client, Channels("carewatch-test"), source="sweep")
    assert REGISTRY.get_sample_value("carewatch_alerts_raised_total",
                                     {"kind": "MISSED_VISIT", "source": "sweep"}) is not None  # exists at zero
    before = _raised("SHORT_VISIT", "sweep")
    with caplog.at_level(logging.INFO, logger="carewatch.alerts.bus"):
        assert await bus.publish_alerts([RAISED, replace(RAISED, id=2, status="auto_resolved")]) == 2
        client.away = True
        for n in range(3):
            assert await bus.publish_alerts([replace(RAISED, id=10 + n)]) == 0
        client.away = False
        assert await bus.publish_alerts([replace(RAISED, id=20, status="acknowledged")]) == 1
    assert _raised("SHORT_VISIT", "sweep") == before + 4  # 1 + 3 raised while Redis was away; none twice
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "unavailable" in said[0] and "available again" in said[1], said
    assert all(r.exc_info is None for r in caplog.records)
