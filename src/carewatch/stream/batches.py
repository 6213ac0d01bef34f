"""Whole batches from an agent's stream, taken from its channel's queue at once (issue 12).

faust's `Stream.take_events(n, within)` moves messages one at a time from the channel's queue into
its buffer through the stream's per-message iteration (a task switch, processors and sensors per
message), and only while the agent waits: it fills a batch for `within` seconds after the previous
one was applied, however many messages are already queued. Measured on the bench, with a backlog of
30,000 events, batches averaged about 850 messages of the 4,000 allowed, and that per-message
iteration was a large share of the worker's CPU.

`take_batches` does what take_events does for each message (the generation check after a rebalance,
tracking the message as unacked, acknowledging it after the batch, the sensors' message in/out) but
for a whole queue at once: it waits for the first message, takes every message already queued (up
to `max_`), and when fewer than `max_` are there waits for more while they keep coming: at most
`within` seconds in all, and no gap longer than `idle` (CAREWATCH_BATCH_IDLE_MS). A batch is
yielded to the agent and acknowledged only when the agent asks for the next one, i.e. after it was
applied or rejected event by event; a rebalance waits for that (faust's `wait_empty` waits for the
tracked messages to be acknowledged). Two differences from faust's own iteration, both towards
reading a message again rather than losing it: a message of a previous generation is dropped without
being acknowledged (faust seeks back to the committed offsets after a rebalance, so it comes again),
and a batch whose agent is stopped half-way through is not acknowledged (take_events acknowledges it
in a `finally`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from faust.exceptions import Skip
from mode.utils.futures import maybe_async


def _ready(stream: Any, event: Any) -> bool:
    """faust's test for a message it may still process: flow on, and of the consumer's generation."""
    app = stream.app
    return bool(app.flow_control.is_active() and event.message.generation_id == app.consumer_generation_id)


def _track(stream: Any, events: Sequence[Any]) -> None:
    """Mark each message as in flight (faust's Consumer.track_message, inlined in its iteration)."""
    app = stream.app
    acking = app.topics.acking_topics
    unacked = app.consumer.unacked
    on_message_in = app.sensors.on_message_in
    for event in events:
        message = event.message
        if message.topic in acking and not message.tracked:
            message.tracked = True
            unacked.add(message)
            on_message_in(message.tp, message.offset, message)


def _ack(stream: Any, events: Sequence[Any]) -> None:
    """Acknowledge each message: its offset becomes safe to commit once every stream has acked it."""
    on_message_out = stream.app.sensors.on_message_out
    for event in events:
        if event.ack():
            message = event.message
            on_message_out(message.tp, message.offset, message)


async def _processed(stream: Any, events: list[Any]) -> list[Any]:
    """The stream's processors (none in the worker; faust's test harness adds one) run on each value,
    as faust's iteration runs them; an event a processor skips (faust.exceptions.Skip) is dropped."""
    processors = list(stream._processors)
    if not processors:
        return events
    kept = []
    for event in events:
        value = event.value
        try:
            for processor in processors:
                value = await maybe_async(processor(value))
        except Skip:
            continue
        kept.append(event)
    return kept


async def _gather(queue: Any, first: Any, max_: int, within: float, idle: float) -> list[Any]:
    """`first` and what follows it: everything queued now, then more while messages keep coming (none
    for `idle` seconds cuts the batch), for `within` seconds at most. Under a backlog the fetcher keeps
    the queue filling and batches fill up; under a trickle a batch goes as soon as the fetch that
    brought it is drained, instead of waiting out `within`."""
    taken = [first]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while len(taken) < max_:
        while len(taken) < max_ and not queue.empty():
            taken.append(queue.get_nowait())
        remaining = deadline - loop.time()
        if len(taken) >= max_ or remaining <= 0:
            break
        try:
            async with asyncio.timeout(min(remaining, idle)):
                taken.append(await queue.get())
        except TimeoutError:
            break
    return taken


async def take_batches(stream: Any, max_: int, within: float, idle: float | None = None) -> AsyncIterator[list[Any]]:
    """Yield lists of at most `max_` faust events from the agent's `stream`; each list is acknowledged
    when the next one is asked for, never before (unlike take_events, not when the iteration is
    abandoned half-way through a batch). A batch waits at most `within` seconds after its first
    message, and no more than `idle` seconds (default: `within`) for the next one."""
    await stream.maybe_start()
    queue = stream.channel.queue
    quiet = within if idle is None else idle
    while not stream.should_stop:
        taken = await _gather(queue, await queue.get(), max_, within, quiet)
        # A message of an older generation (read before a rebalance) is dropped and NOT acknowledged:
        # faust seeks every assigned partition back to its committed offset after a rebalance, so it
        # is read again. (faust's own iteration acknowledges it; taken here in bulk, such messages are
        # more common, and acknowledging one lets a commit pass it before its re-read copy is applied:
        # the fault suite lost 38 messages that way to a kill -9 just after a handover.)
        ready = [event for event in taken if _ready(stream, event)]
        _track(stream, ready)
        processed = await _processed(stream, ready)
        if len(processed) < len(ready):  # skipped by a processor: acknowledged, as faust does
            kept = {id(event) for event in processed}
            _ack(stream, [event for event in ready if id(event) not in kept])
        ready = processed
        if ready:
            yield ready
            # Reached only when the agent asks for the next batch: this one was applied or rejected.
            # Cancelled half-way (the worker stopping), it stays unacknowledged and is read again.
            _ack(stream, ready)
