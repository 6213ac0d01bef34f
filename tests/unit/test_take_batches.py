"""stream/batches.take_batches: whole batches from the agent's queue, acknowledged only after they
were applied, with faust's own rules for tracking and for messages of an older generation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from carewatch.stream.batches import take_batches


@dataclass(eq=False)
class Message:
    offset: int
    generation_id: int = 1
    topic: str = "care-events"
    partition: int = 0
    tracked: bool = False
    acked: bool = False

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(eq=False)
class Event:
    message: Message

    @property
    def value(self) -> int:
        return self.message.offset

    def ack(self) -> bool:
        if self.message.acked:
            return False
        self.message.acked = True
        return True


class Flow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


@dataclass
class App:
    consumer_generation_id: int = 1
    flow_control: Flow = field(default_factory=Flow)
    sent_in: list[int] = field(default_factory=list)
    sent_out: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topics = type("Topics", (), {"acking_topics": {"care-events"}})()
        self.consumer = type("Consumer", (), {"unacked": set()})()
        self.sensors = type("Sensors", (), {
            "on_message_in": lambda _, tp, offset, m: self.sent_in.append(offset),
            "on_message_out": lambda _, tp, offset, m: self.sent_out.append(offset)})()


class Stream:
    def __init__(self) -> None:
        self.app = App()
        self.channel = type("Channel", (), {"queue": asyncio.Queue()})()
        self.should_stop = False
        self._processors: list[object] = []

    async def maybe_start(self) -> None:
        return None

    def put(self, *offsets: int, generation: int = 1) -> list[Event]:
        events = [Event(Message(o, generation)) for o in offsets]
        for e in events:
            self.channel.queue.put_nowait(e)
        return events


async def test_everything_queued_is_taken_at_once_up_to_the_limit() -> None:
    stream = Stream()
    events = stream.put(*range(10))
    batches = take_batches(stream, 4, within=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await anext(batches)
    assert [e.message.offset for e in first] == [0, 1, 2, 3]
    assert loop.time() - started < 1.0  # full: no waiting for `within`
    assert all(e.message.tracked for e in first) and stream.app.consumer.unacked == {e.message for e in first}
    assert not any(e.message.acked for e in events)  # not before it was applied
    second = await anext(batches)
    assert [e.message.acked for e in first] == [True] * 4 and stream.app.sent_out == [0, 1, 2, 3]
    assert [e.message.offset for e in second] == [4, 5, 6, 7]
    await batches.aclose()


async def test_a_short_batch_waits_at_most_within_for_more() -> None:
    stream = Stream()
    stream.put(1, 2)
    batches = take_batches(stream, 100, within=0.2)

    async def later() -> None:
        await asyncio.sleep(0.05)
        stream.put(3)

    task = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = await anext(batches)
    waited = loop.time() - started
    await task
    assert [e.message.offset for e in batch] == [1, 2, 3]
    assert 0.15 <= waited < 1.0
    await batches.aclose()


async def test_a_batch_goes_once_messages_stop_coming_for_idle() -> None:
    """A trickle does not wait out `within`: the batch goes `idle` after the last message came."""
    stream = Stream()
    stream.put(1, 2)
    batches = take_batches(stream, 100, within=2.0, idle=0.05)

    async def later() -> None:
        await asyncio.sleep(0.02)
        stream.put(3)  # within `idle` of the first two: same batch
        await asyncio.sleep(0.3)
        stream.put(4)  # after an idle gap: the next batch

    task = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    batch = await anext(batches)
    waited = loop.time() - started
    assert [e.message.offset for e in batch] == [1, 2, 3]
    assert 0.06 <= waited < 0.3
    assert [e.message.offset for e in await anext(batches)] == [4]
    await task
    await batches.aclose()


async def test_older_generation_and_an_abandoned_batch_are_never_acknowledged() -> None:
    stream = Stream()
    stale = stream.put(1, 2, generation=0)  # read before a rebalance
    fresh = stream.put(3, 4)
    batches = take_batches(stream, 100, within=0.01)
    batch = await anext(batches)
    assert batch == fresh
    # Read before a rebalance: dropped, not acknowledged (faust seeks back to the committed offset and
    # reads it again); acknowledging it would let a commit pass it before its new copy is applied.
    assert not any(e.message.acked or e.message.tracked for e in stale)
    await batches.aclose()  # the worker stopped while this batch was being applied
    assert not any(e.message.acked for e in fresh)  # read again after the restart


async def test_the_streams_processors_see_each_value_as_in_fausts_iteration() -> None:
    from faust.exceptions import Skip

    stream = Stream()
    seen: list[int] = []

    def processor(value: int) -> int:
        seen.append(value)
        if value == 2:
            raise Skip()
        return value

    stream._processors.append(processor)  # as faust's test harness adds one
    events = stream.put(1, 2, 3)
    batches = take_batches(stream, 10, within=0.01)
    batch = await anext(batches)
    assert seen == [1, 2, 3] and [e.message.offset for e in batch] == [1, 3]
    assert events[1].message.acked  # skipped by a processor: acknowledged, as faust does
    await batches.aclose()
