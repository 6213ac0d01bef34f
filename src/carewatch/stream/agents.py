"""The worker's agent and timer: thin shells around BatchProcessor."""

from __future__ import annotations

import logging
from typing import Any

import faust

from carewatch.logs import Outage
from carewatch.settings import Settings
from carewatch.stream.app import Topics
from carewatch.stream.batch_metrics import observe_batch
from carewatch.stream.batches import BatchProcessor

log = logging.getLogger(__name__)

HELD_SWEEP_SECONDS = 2.0


def register_agents(app: faust.App, settings: Settings, topics: Topics, processor: BatchProcessor) -> Any:
    """Attach the care-events agent and the held-events timer to `app`; return the agent."""

    @app.agent(topics.events, name="carewatch.care_events")
    async def care_events(stream: Any) -> None:
        # take_events (not take) keeps each message's key, which dead letters reuse; the batch
        # is acknowledged only after this body returns, i.e. after it is committed.
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within_seconds):
            try:
                outcome = await processor.handle([(event.key, event.value) for event in batch])
                observe_batch(app.consumer, batch, outcome)
            except Exception:
                # A bug must not stop the stream for everyone; the messages stay on the topic
                # (its retention) for a replay once the cause is fixed.
                log.exception("batch of %d messages failed", len(batch))

    held_outage = Outage(log, "the held-events sweep", retrying=f"retrying every {HELD_SWEEP_SECONDS:g} s")

    @app.timer(interval=HELD_SWEEP_SECONDS, name="carewatch.held_sweep")  # type: ignore[untyped-decorator]
    async def held_sweep() -> None:
        try:
            released, expired = await processor.sweep_held()
        except Exception as exc:  # the database away, most likely: said once, not every 2 s
            held_outage.failed(exc)
            return
        held_outage.ok()
        if released.released or expired:
            log.info("held events: %d released, %d expired", released.released, len(expired))

    return care_events


def topic_dead_letters(topics: Topics) -> Any:
    """A DeadLetterSink that produces to the dead-letter topic."""

    async def send(key: bytes | None, value: bytes) -> None:
        await topics.dead_letter.send(key=key, value=value)

    return send
