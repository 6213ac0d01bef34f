"""POST /events: care events over HTTP, validated here and produced to the same topic as Kafka input.

Answers item by item. Rejected items are written to rejected_events (source 'http') and counted
before any valid item is produced, so a failure leaves nothing half-done silently: a 503 says so,
and a retry of the whole body is safe because every downstream write is idempotent by event_id.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import JSONResponse

from carewatch.clock import Clock
from carewatch.domain.ownership import named_packages, named_shifts
from carewatch.metrics import EVENTS_REJECTED
from carewatch.schema.events import CareEvent, Rejection, message_key, validate_event
from carewatch.security.ingest_scope import apply_scope
from carewatch.security.roles import Viewer
from carewatch.store.ownership import load_owners
from carewatch.store.rejects import record_rejections

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 5_000
PRODUCE_TIMEOUT_SECONDS = 15.0

HTTP_EVENTS_PRODUCED = Counter(
    "carewatch_http_events_produced_total", "Valid care events posted over HTTP and produced to Kafka.")


@dataclass
class EventProducer:
    """An aiokafka producer started on first use, so the API serves reads while Kafka is away."""

    bootstrap: str
    topic: str
    _producer: AIOKafkaProducer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                            request_timeout_ms=10_000)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def produce(self, events: Sequence[CareEvent]) -> None:
        """Send every event keyed as the contract says and wait until the broker has each one."""
        producer = await self._started()
        sent = [await producer.send(self.topic, e.raw.encode(), key=message_key(e.payload).encode())
                for e in events]
        await asyncio.gather(*sent)

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None


class RefusedBody(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_items(request: Request) -> list[str]:
    """The posted events, each re-serialised as the raw text of one event; raises RefusedBody."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RefusedBody(413, f"body is {declared} bytes; at most {MAX_BODY_BYTES} bytes per request")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RefusedBody(413, f"body is over {MAX_BODY_BYTES} bytes; send fewer events per request")
        chunks.append(chunk)
    try:
        body: Any = json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RefusedBody(400, f"body is not JSON: {exc}") from exc
    except RecursionError:  # a body of thousands of nested brackets: a 400, not a crash
        raise RefusedBody(400, "body is nested too deeply to be a care event") from None
    items = body if isinstance(body, list) else [body]
    if len(items) > MAX_ITEMS:
        raise RefusedBody(413, f"{len(items)} events in one request; at most {MAX_ITEMS}")
    return [json.dumps(item, ensure_ascii=False, separators=(",", ":")) for item in items]


async def within_ownership(conn: AsyncConnection[Any],
                           items: Sequence[CareEvent | Rejection]) -> list[CareEvent | Rejection]:
    """The items, with each event that writes into another provider's package or shift (as far as
    the database knows now) turned into a 'scope' rejection: answered here, not only by the worker."""
    events = [(i.type, i.payload) for i in items if isinstance(i, CareEvent)]
    owners = await load_owners(conn, named_packages(events), named_shifts(events))
    checked: list[CareEvent | Rejection] = []
    for item in items:
        problem = (owners.judge(item.type, item.payload, item.occurred_at, item.event_id)
                   if isinstance(item, CareEvent) else None)
        if isinstance(item, CareEvent) and problem is not None:
            checked.append(Rejection(problem, "scope", item.event_id, item.type, item.raw))
        else:
            checked.append(item)
    return checked


def _result(index: int, item: CareEvent | Rejection) -> dict[str, Any]:
    if isinstance(item, CareEvent):
        return {"index": index, "event_id": item.event_id, "status": "accepted", "reason": None}
    return {"index": index, "event_id": item.event_id, "status": "rejected", "reason": item.reason,
            "stage": item.stage}


async def post_events(request: Request, *, viewer: Viewer, pool: AsyncConnectionPool,
                      producer: EventProducer, clock: Clock) -> JSONResponse:
    if not viewer.may_post_events:
        return JSONResponse({"error": f"a {viewer.role.value} token may not post events"}, status_code=403)
    try:
        raws = await read_items(request)
    except RefusedBody as refused:
        return JSONResponse({"error": refused.reason}, status_code=refused.status)

    checked = apply_scope(viewer, [validate_event(raw) for raw in raws])
    try:
        async with pool.connection() as conn:
            checked = await within_ownership(conn, checked)
            rejections = [c for c in checked if isinstance(c, Rejection)]
            await record_rejections(conn, rejections, "http", clock.now())
    except (psycopg.Error, PoolTimeout) as exc:
        log.warning("POST /events: could not record rejections: %s", exc)
        return JSONResponse({"error": "the database did not answer, so nothing was accepted; retry later"},
                            status_code=503)
    events = [c for c in checked if isinstance(c, CareEvent)]
    for r in rejections:
        EVENTS_REJECTED.labels(r.stage, "http").inc()

    if events:
        try:
            await asyncio.wait_for(producer.produce(events), PRODUCE_TIMEOUT_SECONDS)
        except (KafkaError, TimeoutError, OSError) as exc:
            log.warning("POST /events: Kafka did not take %d events: %r", len(events), exc)
            return JSONResponse({
                "error": f"Kafka did not accept the events ({type(exc).__name__}: {exc}); some may have "
                         "been produced, none is confirmed. Retrying the whole body is safe: events are "
                         "idempotent by event_id.",
                "rejected": len(rejections),
            }, status_code=503)
        HTTP_EVENTS_PRODUCED.inc(len(events))

    return JSONResponse({
        "accepted": len(events),
        "rejected": len(rejections),
        "results": [_result(i, item) for i, item in enumerate(checked)],
    })
