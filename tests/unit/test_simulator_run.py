"""Emitting the feed: pacing by the clock, HTTP batches with the token, Kafka keys and topic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from carewatch.clock import AcceleratedClock
from carewatch.services import Broker
from carewatch.simulator import FeedOptions, generate_feed
from carewatch.simulator.run import Progress, emit
from carewatch.simulator.sinks import HttpSink, KafkaSink

START = datetime(2026, 4, 6, 5, 0, tzinfo=UTC)


class RecordingSink:
    def __init__(self, clock: AcceleratedClock | None = None) -> None:
        self.batches: list[list[Mapping[str, Any]]] = []
        self.sent_at: list[datetime] = []
        self.clock = clock

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        self.batches.append(list(events))
        if self.clock:
            self.sent_at.append(self.clock.now())


async def test_without_a_clock_everything_goes_at_once_in_batches() -> None:
    feed = generate_feed(FeedOptions(start=START, packages=80, providers=4))
    sink = RecordingSink()
    progress = Progress(len(feed))
    await emit(feed, sink, None, progress)
    assert [e for b in sink.batches for e in b] == feed
    assert max(len(b) for b in sink.batches) == 500
    assert progress.sent == len(feed)


async def test_the_accelerated_clock_holds_each_event_until_its_occurred_at() -> None:
    t0 = START + timedelta(hours=2)
    feed = [{"event_id": f"e{n}", "occurred_at": (t0 + timedelta(seconds=60 * n)).isoformat()}
            for n in range(4)]
    # 600 sim seconds per real second: the four events, a minute apart, take about 0.3 s.
    clock = AcceleratedClock(t0, datetime.now(UTC), 600)
    sink = RecordingSink(clock)
    await emit(feed, sink, clock, Progress(len(feed)))
    sent = [e for b in sink.batches for e in b]
    assert sent == feed
    assert len(sink.batches) >= 3  # not all at once
    for batch, at in zip(sink.batches, sink.sent_at, strict=True):
        for event in batch:
            assert datetime.fromisoformat(event["occurred_at"]) <= at


async def test_http_sink_posts_batches_of_500_with_the_bearer_token() -> None:
    seen: list[tuple[str, str, int]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.url.path, request.headers.get("authorization", ""), len(body)))
        return httpx.Response(202, json={"accepted": 1})

    sink = HttpSink("http://api.test/", "s3cret", transport=httpx.MockTransport(handler))
    await sink.send([{"event_id": str(n)} for n in range(1234)])
    await sink.stop()
    assert seen == [("/events", "Bearer s3cret", 500), ("/events", "Bearer s3cret", 500),
                    ("/events", "Bearer s3cret", 234)]


async def test_http_sink_stops_on_a_refusal() -> None:
    sink = HttpSink("http://api.test", None, transport=httpx.MockTransport(lambda r: httpx.Response(401)))
    with pytest.raises(RuntimeError, match="401"):
        await sink.send([{"event_id": "x"}])
    await sink.stop()


@pytest.mark.services
async def test_kafka_sink_keys_each_event_as_the_contract_says(broker: Broker) -> None:
    feed = generate_feed(FeedOptions(start=START, packages=6, providers=2))
    topic = f"sim-test-{datetime.now(UTC).timestamp():.0f}"
    sink = KafkaSink(broker.bootstrap, topic, 4)
    await sink.start()
    await sink.send(feed)
    await sink.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                group_id=f"{topic}-check")
    await consumer.start()
    got: dict[str, str] = {}
    try:
        async with asyncio.timeout(20):
            while len(got) < len(feed):
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    for m in messages:
                        got[json.loads(m.value)["event_id"]] = m.key.decode()
    finally:
        await consumer.stop()
    for event in feed:
        keys = ("package_id", "carer_id", "provider_id", "commissioner_id")
        expected = next(event[k] for k in keys if k in event)
        assert got[event["event_id"]] == expected


async def test_http_sink_waits_and_resends_when_rate_limited() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"accepted": 1})]
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(len(json.loads(request.content)))
        return answers.pop(0)

    sink = HttpSink("http://api.test", None, transport=httpx.MockTransport(handler))
    await sink.send([{"event_id": "x"}])
    await sink.stop()
    assert calls == [1, 1]
