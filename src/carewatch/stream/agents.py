"""The worker's agent and timer: thin shells around BatchProcessor."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import Any

import faust

from carewatch import metrics
from carewatch.collector import collect_while_paused, collector_paused
from carewatch.logs import Outage
from carewatch.pipeline.outcome import BatchOutcome, merge_outcomes
from carewatch.pipeline.processor import BatchProcessor
from carewatch.settings import Settings
from carewatch.stream.app import Topics
from carewatch.stream.batch_metrics import observe_batch
from carewatch.stream.batches import take_batches
from carewatch.stream.lanes import registers_references, split_by_partition

log = logging.getLogger(__name__)

HELD_SWEEP_SECONDS = 2.0


def register_agents(app: faust.App, settings: Settings, topics: Topics, processor: BatchProcessor) -> Any:
    """Attach the care-events agent and the held-events timer to `app`; return the agent.

    The agent applies each batch in up to `settings.worker_lanes` lanes (stream/lanes.py), one
    processor each: `processor` and its siblings."""
    lanes = [processor, *(processor.sibling() for _ in range(max(1, settings.worker_lanes) - 1))]

    @app.agent(topics.events, name="carewatch.care_events")
    async def care_events(stream: Any) -> None:
        # Whole batches of faust events (each keeps its message's key, which dead letters reuse),
        # taken from the queue at once (stream/batches.py); a batch is acknowledged only when the
        # next is asked for, i.e. after each of its messages has been applied or rejected.
        async for batch in take_batches(stream, settings.batch_size, settings.batch_within_seconds,
                                        settings.batch_idle_ms / 1000):
            # While the lanes wait for PostgreSQL, the next batch's messages are validated.
            ahead = asyncio.ensure_future(validate_queued(stream.channel.queue, processor, settings.batch_size))
            try:
                with collector_paused():  # collector.py
                    outcome = await handle_lanes(lanes, batch, settings.lane_min_events)
            finally:
                ahead.cancel()
            observe_batch(app.consumer, batch, outcome)

    held_outage = Outage(log, "the held-events sweep", retrying=f"retrying every {HELD_SWEEP_SECONDS:g} s")

    @app.timer(interval=HELD_SWEEP_SECONDS, name="carewatch.held_sweep")  # type: ignore[untyped-decorator]
    async def held_sweep() -> None:
        try:
            released, expired = await processor.sweep_held()
        except Exception as exc:  # the database away, most likely: said once, not every 2 s
            metrics.SWEEP_FAILURES.labels(job="held_events").inc()
            held_outage.failed(exc)
            return
        held_outage.ok()
        if released.released or expired:
            log.info("held events: %d released, %d rejected", released.released, len(expired))

    return care_events


async def validate_queued(queue: Any, processor: BatchProcessor, limit: int, chunk: int = 64) -> None:
    """Validate up to `limit` messages waiting in the agent's queue (faust's channel queue, an
    asyncio.Queue: its deque read, not consumed), `chunk` at a time, yielding to the lanes in between.

    Run beside the lanes of the batch in hand and cancelled when they are done (issue 12): a lane
    waiting for PostgreSQL leaves the worker idle a quarter of the time, and validation is about a
    tenth of its work. Nothing is taken from the queue or acknowledged; a result is only kept for
    BatchProcessor.handle, which computes it itself for anything not validated ahead."""
    waiting = list(itertools.islice(getattr(queue, "_queue", ()), limit))
    for n, event in enumerate(waiting):
        if n % chunk == 0:
            await asyncio.sleep(0)  # the lanes first, and again every `chunk` messages
        value = getattr(event, "value", None)
        if type(value) is bytes:  # the test handle() makes before looking a result up
            processor.validate_ahead(value)


def _partition(event: Any) -> tuple[str, int]:
    return event.message.tp.topic, event.message.tp.partition


async def handle_lanes(lanes: Sequence[BatchProcessor], batch: Sequence[Any], min_events: int) -> BatchOutcome:
    """Apply `batch` split by partition over the lanes' processors at once (stream/lanes.py); returns
    when every part has been applied or rejected, with their outcomes merged."""
    parts = split_by_partition(batch, len(lanes), _partition, min_events)
    if len(parts) > 1 and any(registers_references(event.value) for event in batch):
        parts = [list(batch)]
    if len(parts) == 1:
        return await handle_until_done(lanes[0], parts[0])
    # Fewer parts than lanes when the batch has fewer partitions: the spare lanes sit this batch out.
    outcomes = await asyncio.gather(*(handle_until_done(lane, part)
                                      for lane, part in zip(lanes, parts, strict=False)))
    merged = BatchOutcome()
    for outcome in outcomes:
        merged = merge_outcomes(merged, outcome)
    return merged


async def handle_until_done(processor: BatchProcessor, batch: Sequence[Any]) -> BatchOutcome:
    """Hand one batch to the processor until it returns. The processor isolates bad events and
    retries database trouble itself; should anything still escape it (a bug, the dead-letter topic
    unreachable), the batch is tried again rather than acknowledged unapplied: events are
    idempotent by event_id, so a second try changes nothing that the first committed."""
    messages = [(event.key, event.value) for event in batch]
    partitions = sorted({(event.message.tp.topic, event.message.tp.partition) for event in batch})
    delay = 1.0
    while True:
        try:
            return await processor.handle(messages, partitions)
        except Exception:
            metrics.BATCHES_FAILED.labels(reason="unexpected").inc()
            log.exception("a batch of %d messages failed; trying it again in %.0f s (not acknowledged)",
                          len(messages), delay)
            collect_while_paused()  # the collector is paused for the batch (collector.py)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def topic_dead_letters(topics: Topics) -> Any:
    """A DeadLetterSink that produces to the dead-letter topic."""

    async def send(key: bytes | None, value: bytes) -> None:
        await topics.dead_letter.send(key=key, value=value)

    return send
