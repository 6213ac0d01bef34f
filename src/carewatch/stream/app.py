"""The faust application of the stream worker, built from Settings (no module-level globals)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import faust

from carewatch.services import free_port
from carewatch.settings import Settings
from carewatch.stream.kafka import install_transport


@dataclass(frozen=True)
class Topics:
    events: Any  # faust.TopicT: the care-events input, raw bytes
    dead_letter: Any  # rejected input as JSON, keyed like the input


def create_app(settings: Settings) -> faust.App:
    """A faust App for the worker's consumer group, with raw values and short group timeouts."""
    session = max(6.0, settings.worker_session_timeout_seconds)
    app = faust.App(
        settings.consumer_group,
        broker=settings.kafka_url,
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        # Short timeouts let a group form in seconds and a dead member's partitions move quickly.
        broker_session_timeout=session,
        broker_heartbeat_interval=max(1.0, session / 5),
        broker_rebalance_timeout=session,
        broker_request_timeout=max(30.0, session * 3),
        consumer_auto_offset_reset="earliest",
        # The faust worker binds its web port even when the web server is off: give it its own.
        web_enabled=False,
        web_port=settings.worker_web_port or free_port(),
        web_host="127.0.0.1",
        # Offsets are committed often: writes are idempotent, so a replay after a crash is harmless.
        broker_commit_interval=1.0,
        # Room for two whole batches: take_batches fills a batch from what arrived while the last
        # one was applied (faust's default, 4,096, would cut a batch of 4,000 short).
        stream_buffer_maxsize=max(4096, 2 * settings.batch_size),
    )
    install_transport(app, settings.fetch_max_wait_ms)
    return app


def make_topics(app: faust.App, settings: Settings) -> Topics:
    """The input and dead-letter topics of this deployment (names from settings)."""
    events = app.topic(settings.events_topic, value_type=bytes, key_type=bytes, value_serializer="raw",
                       key_serializer="raw", partitions=settings.topic_partitions)
    dead_letter = app.topic(settings.dead_letter_topic, value_type=bytes, key_type=bytes,
                            value_serializer="raw", key_serializer="raw",
                            partitions=settings.topic_partitions)
    return Topics(events, dead_letter)


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the input and dead-letter topics where missing; return the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = (settings.events_topic, settings.dead_letter_topic)
        wanted = [name for name in names if name not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker created it first
                await admin.create_topics([NewTopic(name, settings.topic_partitions, 1) for name in wanted])
        return wanted
    finally:
        await admin.close()
