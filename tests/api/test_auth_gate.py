"""The access gate over real HTTP and websockets, in front of a small app with the real token store.

This pins the gate's own behaviour (401/403/413/429, websocket 4401) independent of the full
API; tests/api/test_auth_api.py and test_access_matrix.py run the same rules through create_app.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
import strawberry
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import GraphQL

from carewatch.security.gate import AccessGate, Authenticator, viewer_in_scope
from carewatch.security.limits import BATCHING, MAX_BODY_BYTES, graphql_extensions
from carewatch.security.rate_limit import IngestRateLimiter
from carewatch.security.tokens import TokenCache, create_token, revoke_token

pytestmark = pytest.mark.services


@strawberry.type
class Query:
    @strawberry.field
    def whoami(self, info: strawberry.Info) -> str:
        viewer = viewer_in_scope(info.context["request"].scope)
        return "nobody" if viewer is None else f"{viewer.role.value}:{viewer.scope}"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def whoami(self, info: strawberry.Info) -> AsyncIterator[str]:
        viewer = viewer_in_scope(info.context["request"].scope)
        yield "nobody" if viewer is None else f"{viewer.role.value}:{viewer.scope}"


def build_app(database_url: str, redis_url: str, *, rate: int = 600, cache_seconds: float = 0.0) -> Starlette:
    schema = strawberry.Schema(Query, subscription=Subscription, extensions=graphql_extensions(False),
                               config=strawberry.schema.config.StrawberryConfig(batching_config=BATCHING))

    async def events(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"received_bytes": len(body), "viewer": str(viewer_in_scope(request.scope))})

    async def metrics(request: Request) -> PlainTextResponse:
        return PlainTextResponse("carewatch_up 1\n")

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False)
        await pool.open(wait=True)
        client = aioredis.from_url(redis_url)
        try:
            yield {"pool": pool, "redis": client}
        finally:
            await client.aclose()
            await pool.close()

    graphql = GraphQL(schema)
    return Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), WebSocketRoute("/graphql", graphql),
                Route("/events", events, methods=["POST"]), Route("/metrics", metrics),
                Route("/healthz", healthz)],
        lifespan=lifespan,
        middleware=[Middleware(AccessGate, production=False, metrics_token_required=True,
                               authenticator=Authenticator(TokenCache(cache_seconds)),
                               rate_limiter=IngestRateLimiter(rate, namespace=f"test-{id(schema)}"))],
    )


def make_token(database_url: str, role: str, scope: str | None = None) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            created = await create_token(conn, role, scope)
            await conn.commit()
            return created.id, created.secret
    return asyncio.run(go())


def revoke(database_url: str, token_id: int) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await revoke_token(conn, token_id)
            await conn.commit()
    asyncio.run(go())


@pytest.fixture()
def app_db(fresh_database_url: str, redis_url: str) -> Iterator[tuple[TestClient, str]]:
    with TestClient(build_app(fresh_database_url, redis_url, rate=5)) as client:
        yield client, fresh_database_url


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


WHOAMI = {"query": "{ whoami }"}


def test_missing_bad_and_revoked_tokens_get_the_same_401(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    token_id, secret = make_token(db, "commissioner", "LA-1")
    ok = client.post("/graphql", json=WHOAMI, headers=bearer(secret))
    assert ok.status_code == 200 and ok.json() == {"data": {"whoami": "commissioner:LA-1"}}
    revoke(db, token_id)
    answers = [
        client.post("/graphql", json=WHOAMI),
        client.post("/graphql", json=WHOAMI, headers={"Authorization": "Bearer cw_" + "x" * 43}),
        client.post("/graphql", json=WHOAMI, headers={"Authorization": "Basic abc"}),
        client.post("/graphql", json=WHOAMI, headers=bearer(secret)),  # revoked (no cache here)
        client.get("/graphql", params={"query": "{ whoami }"}),
        client.post("/events", content=b"[]"),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {"error": "unauthorized"}
        assert answer.headers["www-authenticate"] == "Bearer"
    assert client.get("/healthz").status_code == 200


def test_roles_at_each_door(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    _, ingest = make_token(db, "ingest", "PRV-A")
    _, provider = make_token(db, "provider", "PRV-A")
    _, admin = make_token(db, "admin")
    refused = client.post("/graphql", json=WHOAMI, headers=bearer(ingest))
    assert refused.status_code == 403 and "only post events" in refused.json()["reason"]
    assert client.post("/events", content=b"[]", headers=bearer(ingest)).status_code == 200
    assert client.post("/events", content=b"[]", headers=bearer(admin)).status_code == 200
    no_post = client.post("/events", content=b"[]", headers=bearer(provider))
    assert no_post.status_code == 403 and no_post.json()["reason"] == "a provider token may not post events"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(provider)).status_code == 200
    assert client.get("/metrics", headers=bearer(ingest)).status_code == 403


def test_body_size_just_under_and_over(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    _, admin = make_token(db, "admin")
    under = client.post("/events", content=b"x" * MAX_BODY_BYTES, headers=bearer(admin))
    assert under.status_code == 200 and under.json()["received_bytes"] == MAX_BODY_BYTES
    over = client.post("/events", content=b"x" * (MAX_BODY_BYTES + 1), headers=bearer(admin))
    assert over.status_code == 413 and over.json()["limit_bytes"] == MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:  # no Content-Length: the gate counts as it reads
        for _ in range(17):
            yield b"y" * 65536

    streamed = client.post("/events", content=chunks(), headers=bearer(admin))
    assert streamed.status_code == 413
    big_query = client.post("/graphql", content=b" " * (MAX_BODY_BYTES + 1),
                            headers={**bearer(admin), "content-type": "application/json"})
    assert big_query.status_code == 413


def test_batches_just_under_and_over(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    _, admin = make_token(db, "admin")
    ten = client.post("/graphql", json=[WHOAMI] * 10, headers=bearer(admin))
    assert ten.status_code == 200 and len(ten.json()) == 10
    eleven = client.post("/graphql", json=[WHOAMI] * 11, headers=bearer(admin))
    assert eleven.status_code == 400
    assert eleven.json() == {"error": "too many operations in one batch: 11 (at most 10)"}


def test_ingest_rate_limit_per_token(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    _, first = make_token(db, "ingest", "PRV-A")
    _, second = make_token(db, "ingest", "PRV-B")
    statuses = [client.post("/events", content=b"[]", headers=bearer(first)).status_code for _ in range(5)]
    assert statuses == [200] * 5  # the fixture allows 5 a minute
    limited = client.post("/events", content=b"[]", headers=bearer(first))
    if limited.status_code == 200:  # the minute turned over mid-test: the new window allows 5 again
        limited = next(r for r in (client.post("/events", content=b"[]", headers=bearer(first))
                                   for _ in range(6)) if r.status_code == 429)
    assert limited.status_code == 429
    retry = int(limited.headers["retry-after"])
    assert 1 <= retry <= 60 and limited.json()["retry_after_seconds"] == retry
    assert client.post("/events", content=b"[]", headers=bearer(second)).status_code == 200


def test_websocket_needs_a_token_in_connection_init(app_db: tuple[TestClient, str]) -> None:
    client, db = app_db
    _, provider = make_token(db, "provider", "PRV-A")
    _, ingest = make_token(db, "ingest", "PRV-A")
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {provider}"}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription { whoami }"}})
        assert ws.receive_json() == {"id": "1", "type": "next",
                                     "payload": {"data": {"whoami": "provider:PRV-A"}}}

    for payload, code in [({}, 4401), ({"authorization": "Bearer cw_nope"}, 4401), (None, 4401),
                          ({"authorization": f"Bearer {ingest}"}, 4403)]:
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            message: dict[str, Any] = {"type": "connection_init"}
            if payload is not None:
                message["payload"] = payload
            ws.send_json(message)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == code, payload

    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "subscription { whoami }"}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4401

    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {provider}"}}
        ws.send_text(json.dumps(init))
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_text("x" * (MAX_BODY_BYTES + 1))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1009
