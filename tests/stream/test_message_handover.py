"""The worker's per-message hand-over: a callback's first step runs at once, the rest as before."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from carewatch.stream.kafka import Resumed, is_message_handover


async def on_message(gate: asyncio.Future[int] | None, seen: list[str]) -> int:
    seen.append("first step")
    if gate is None:
        return 1
    value = await gate
    seen.append(f"after the gate: {value}")
    return value + 1


async def test_a_callback_resumed_after_its_first_step_finishes_as_if_awaited_whole() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []
    coro = on_message(gate, seen)
    pending = coro.send(None)
    assert seen == ["first step"] and pending is gate
    task = asyncio.ensure_future(Resumed(coro, pending))
    await asyncio.sleep(0)
    assert not task.done()
    gate.set_result(41)
    assert await task == 42
    assert seen == ["first step", "after the gate: 41"]


async def test_cancelling_a_resumed_callback_reaches_the_callback() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[int] = loop.create_future()
    seen: list[str] = []
    coro = on_message(gate, seen)
    task = asyncio.ensure_future(Resumed(coro, coro.send(None)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gate.cancelled() and seen == ["first step"]


async def test_only_the_fetchers_per_message_call_is_recognised() -> None:
    event = asyncio.Event()
    calls: list[Any] = [on_message(None, []), event.wait()]
    try:
        assert is_message_handover(tuple(calls))
        assert not is_message_handover((calls[1], calls[0]))
        assert not is_message_handover((calls[0],))
    finally:
        for c in calls:
            c.close()


def test_the_stream_buffer_holds_two_whole_batches() -> None:
    from carewatch.settings import Settings
    from carewatch.stream.app import create_app

    assert Settings().batch_size == 16000
    assert create_app(Settings()).conf.stream_buffer_maxsize == 32000
    assert create_app(Settings(batch_size=500)).conf.stream_buffer_maxsize == 4096  # faust's default
