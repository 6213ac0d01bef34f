"""The alert hub hands memory back once a wave of subscribers has left (graphql/alerts_hub.py)."""

from __future__ import annotations

import asyncio

import pytest

from carewatch.alerts.bus import Channels
from carewatch.graphql import alerts_hub
from carewatch.graphql.alerts_hub import AlertHub


def test_memory_is_released_once_per_wave_of_departures(monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[int] = []
    monkeypatch.setattr(alerts_hub, "release_memory", lambda: released.append(1))
    monkeypatch.setattr(alerts_hub, "RELEASE_AFTER_SECONDS", 0.3)
    hub = AlertHub("redis://127.0.0.1:1/0", Channels("test-release"))

    async def wave(peak: int, left: int) -> None:
        hub.count("c", peak)  # subscribers counted one by one or a group at a time alike
        assert hub.peak >= peak
        for i in range(left):  # each departure reschedules: one release after the last
            hub.count("c", -1)
            if i % 100 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.6)
        hub.count("c", -(peak - left))  # the rest leave before the next wave
        hub.peak = hub.listening

    asyncio.run(wave(10_000, 10_000))
    assert released == [1] and hub.listening == 0
    asyncio.run(wave(1_000, 400))  # most still there: nothing to give back
    assert released == [1]
    asyncio.run(wave(50, 50))  # a handful: not worth a collection
    assert released == [1]


def test_release_memory_runs_here() -> None:
    alerts_hub.release_memory()  # glibc's malloc_trim on this machine; a no-op elsewhere
    assert alerts_hub._TRIM is not None
