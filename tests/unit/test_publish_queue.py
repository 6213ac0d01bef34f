"""alerts/bus.PublishQueue: a batch's alerts are published after the batch loop has moved on, in commit
order, and nothing queued is lost when the worker stops."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from carewatch.alerts.bus import PublishQueue


@dataclass(frozen=True)
class Outcome:
    affected_shift_ids: tuple[str, ...] = ()
    alerts: tuple[Any, ...] = ()


class SlowBus:
    """Stands in for AlertBus: records what is published, each publish taking `delay` seconds."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None) -> None:
        self.delay, self.fail_on = delay, fail_on
        self.published: list[str] = []

    async def publish_alerts(self, alerts: Any) -> int:
        return 0

    async def publish_shift_updates(self, shift_ids: Any) -> int:
        await asyncio.sleep(self.delay)
        ids = list(shift_ids)
        if self.fail_on in ids:
            raise RuntimeError("redis away")
        self.published += ids
        return 1


async def test_the_batch_loop_does_not_wait_and_order_is_kept() -> None:
    bus = SlowBus(delay=0.05)
    queue = PublishQueue(bus, limit=8)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(5):
        await queue(Outcome(affected_shift_ids=(f"S{n}",)))
    assert loop.time() - started < 0.05  # queued, not published, while the batch loop goes on
    assert bus.published == []
    assert await queue.drain(timeout=5)
    assert bus.published == ["S0", "S1", "S2", "S3", "S4"]
    await queue.close()


async def test_a_full_queue_holds_the_batch_loop_back() -> None:
    bus = SlowBus(delay=0.05)
    queue = PublishQueue(bus, limit=1)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(4):
        await queue(Outcome(affected_shift_ids=(f"S{n}",)))
    assert loop.time() - started >= 0.1  # backpressure: memory stays bounded by the limit
    await queue.close()
    assert bus.published == ["S0", "S1", "S2", "S3"]


async def test_a_failure_costs_only_its_batch_and_close_publishes_what_is_queued() -> None:
    bus = SlowBus(fail_on="BAD")
    queue = PublishQueue(bus)  # type: ignore[arg-type]
    await queue(Outcome(affected_shift_ids=("BAD",)))
    await queue(Outcome(affected_shift_ids=("S1",)))
    await queue(Outcome())  # nothing to publish: not queued
    await queue.close()
    assert bus.published == ["S1"] and queue.waiting == 0
