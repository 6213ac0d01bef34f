"""Where simulated events go: the care-events topic, or the API's POST /events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

HTTP_BATCH = 500  # the most events one POST /events carries


def message_key(payload: Mapping[str, Any]) -> str:
    """The contract's key; the schema module's own function when it is there."""
    try:
        from carewatch.schema.events import message_key as schema_key
    except ImportError:
        for name in ("package_id", "carer_id", "provider_id", "commissioner_id"):
            value = payload.get(name)
            if isinstance(value, str) and value:
                return value
        return ""
    return schema_key(payload)


def encode(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class Sink(Protocol):
    async def start(self) -> None: ...
    async def send(self, events: Sequence[Mapping[str, Any]]) -> None: ...
    async def stop(self) -> None: ...


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create the topic with the partitions Carewatch expects, unless it is there already."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaSink.start() first")
        return self._producer

    async def start(self) -> None:
        await ensure_topic(self.bootstrap, self.topic, self.partitions)
        # aiokafka binds to the running loop, so the producer is made here rather than in __init__.
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                          max_batch_size=256 * 1024, acks=1, enable_idempotence=False)
        await self._producer.start()

    async def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        pending = [await self.producer.send(self.topic, encode(e), key=message_key(e).encode())
                   for e in events]
        await asyncio.gather(*pending)

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


class PostRefused(RuntimeError):
    """POST /events answered with an error that a retry will not cure (a bad token, say)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"POST /events answered {status}: {body}")
        self.status = status


class HttpSink:
    def __init__(self, api_url: str, token: str | None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=api_url.rstrip("/"), headers=headers, timeout=30,
                                        transport=transport)

    async def start(self) -> None:
        return None

    async def send(self, events: Sequence[Mapping[str, Any]]) -> None:
        for i in range(0, len(events), HTTP_BATCH):
            await self._post(list(events[i:i + HTTP_BATCH]))

    async def _post(self, batch: list[Mapping[str, Any]]) -> None:
        failures = 0
        while True:
            try:
                response = await self.client.post("/events", json=batch)
            except httpx.TransportError:
                failures += 1
                if failures == 5:
                    raise
                await asyncio.sleep(0.5 * 2**failures)
                continue
            if response.status_code == 429:
                # Over the token's rate: wait as told and send the same batch again (idempotent by event_id).
                await asyncio.sleep(float(response.headers.get("retry-after", "1") or 1))
                continue
            if response.status_code >= 500 and failures < 4:
                failures += 1
                await asyncio.sleep(0.5 * 2**failures)
                continue
            if response.status_code >= 400 and response.status_code != 422:
                # 422 means some events were refused and recorded as rejected: the API keeps them.
                raise PostRefused(response.status_code, response.text[:300])
            return

    async def stop(self) -> None:
        await self.client.aclose()
