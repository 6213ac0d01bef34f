"""The API process: Starlette serving /graphql, POST /events, /healthz, /metrics and the alert board.

`create_app` builds the app; its lifespan owns every resource (the PostgreSQL pool, the Redis
client, the Kafka producer) and hands them to requests as typed state.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
import redis.asyncio as aioredis
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from carewatch.alerts.data_version import ChangeWatch, DataVersion, data_version_channel
from carewatch.clock import Clock, parse_clock
from carewatch.exports import STATEMENTS_CSV_PATH, statements_csv
from carewatch.graphql.alerts_hub import AlertHub, hub_of
from carewatch.graphql.cached_http import CachedQueries
from carewatch.graphql.context import Context, build_context
from carewatch.graphql.fanout import GroupedGraphQLWSHandler, GroupedTransportWSHandler
from carewatch.graphql.over_http import GraphQLOverHTTP, negotiate
from carewatch.graphql.response_cache import ResponseCache
from carewatch.graphql.schema import build_schema
from carewatch.ingest_http import EventProducer, post_events
from carewatch.pages import board_routes, graphiql_page, graphiql_routes
from carewatch.request_metrics import RequestMetrics
from carewatch.security.gate import AccessGate, Authenticator, viewer_in_scope
from carewatch.security.rate_limit import IngestRateLimiter
from carewatch.security.tokens import TokenCache
from carewatch.services import ServiceUnavailable, check_postgres
from carewatch.settings import Settings
from carewatch.store.db import make_pool
from carewatch.store.read_models import count_rejected_events

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0

REJECTED_STORED = Gauge(
    "carewatch_rejected_events_stored", "Rows in rejected_events, by stage and source (read at scrape time).",
    ["stage", "source"],
)


@dataclass(frozen=True)
class AppState:
    settings: Settings
    clock: Clock
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    producer: EventProducer
    hub: AlertHub
    data_version: DataVersion  # announces this process's writes (mutations) to every API process


def app_state(connection: HTTPConnection) -> AppState:
    state = connection.state.carewatch
    if not isinstance(state, AppState):  # only if the lifespan did not run
        raise RuntimeError("the API's lifespan did not run: start the app with lifespan on")
    return state


class CarewatchGraphQL(GraphQLOverHTTP):
    """The GraphQL view; POSTed queries go through the response cache (graphql/cached_http.py)."""

    # Websocket subscriptions run once per group of subscribers that would receive the same payloads.
    graphql_transport_ws_handler_class = GroupedTransportWSHandler
    graphql_ws_handler_class = GroupedGraphQLWSHandler

    def __init__(self, *args: Any, cache: ResponseCache | None = None, clock: Clock | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cached = (CachedQueries(cache, clock, negotiate, self._announce_write)
                       if cache is not None and clock is not None and cache.enabled else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.cached is not None:
            await self.cached(super().__call__, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    @staticmethod
    async def _announce_write(scope: Scope) -> None:
        await app_state(Request(scope)).data_version.changed()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None
    ) -> Context:
        state = app_state(request)
        return build_context(request, response, pool=state.pool, clock=state.clock, settings=state.settings,
                             hub=state.hub)

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_page()  # from the package's vendored files, not a CDN


async def statements_export(request: Request) -> Response:
    state = app_state(request)
    return await statements_csv(request, state.pool, state.clock.now())


async def events(request: Request) -> Response:
    state = app_state(request)
    viewer = viewer_in_scope(request.scope)  # the access gate authenticated this request
    if viewer is None:
        return JSONResponse({"error": "unauthorized"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return await post_events(request, viewer=viewer, pool=state.pool,
                             producer=state.producer, clock=state.clock)


async def _check_postgres(pool: AsyncConnectionPool, query: LiteralString = "SELECT 1") -> str:
    try:
        async with (asyncio.timeout(HEALTH_TIMEOUT_SECONDS),
                    pool.connection(timeout=HEALTH_TIMEOUT_SECONDS) as conn):
            await conn.execute(query)
        return "ok"
    except Exception as exc:  # any failure is "not healthy", reported, never raised
        return f"unavailable: {type(exc).__name__}: {exc}"


async def _check_redis(client: aioredis.Redis) -> str:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await client.ping()
        return "ok"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"


async def healthz(request: Request) -> Response:
    state = app_state(request)
    checks = {"postgres": await _check_postgres(state.pool), "redis": await _check_redis(state.redis)}
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "unavailable", "checks": checks},
                        status_code=200 if healthy else 503)


async def readyz(request: Request) -> Response:
    """Ready for traffic: the database (migrated) and Redis both answer; 503 with the reason otherwise."""
    state = app_state(request)
    checks = {"postgres": await _check_postgres(state.pool, "SELECT 1 FROM schema_migrations LIMIT 1"),
              "redis": await _check_redis(state.redis)}
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    state = app_state(request)
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            counts = await count_rejected_events(state.pool)
        for (stage, source), n in counts.items():
            REJECTED_STORED.labels(stage, source).set(n)
    except Exception as exc:  # the process metrics are still worth serving without the database
        log.warning("/metrics: could not read rejected_events: %s", exc)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings, clock: Clock | None = None) -> Starlette:
    """The API app; `clock` overrides the processing clock of `settings.clock` (tests pass a FixedClock)."""
    processing_clock = clock if clock is not None else parse_clock(settings.clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        pool = make_pool(settings.database_url, check_on_borrow=True)  # a request never gets a dead connection
        await pool.open(wait=True, timeout=10)
        client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
        producer = EventProducer(settings.kafka_bootstrap, settings.events_topic)
        # One Redis subscription per process for the alerts and shiftUpdates subscriptions, listening
        # from start-up so that an alert published before the first subscriber's arrival is not lost.
        hub = hub_of(settings)
        channel = data_version_channel(settings)
        state = AppState(settings, processing_clock, pool, client, producer, hub,
                         DataVersion(client, channel, source="api"))
        await hub.start()
        # The response cache serves nothing until this process listens for announced writes.
        watch = ChangeWatch(client, channel, on_change=cache.invalidate,
                            on_listening=lambda live: setattr(cache, "live", live))
        if cache.enabled:
            watch.start()
        try:
            # "pool" and "redis" are also top level: the access gate (security/gate.py) reads them there.
            yield {"carewatch": state, "pool": pool, "redis": client}
        finally:
            await watch.stop()
            await hub.stop()
            await producer.close()
            await client.aclose()
            await pool.close()

    schema = build_schema(production=settings.production)
    cache = ResponseCache(settings.response_cache_ttl_ms / 1000, settings.response_cache_mb * 1024 * 1024)
    graphql_app = CarewatchGraphQL(
        schema,
        graphql_ide=None if settings.production else "graphiql",
        cache=cache, clock=processing_clock,
    )
    routes = [
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_app),
        Route("/events", events, methods=["POST"]),
        Route(STATEMENTS_CSV_PATH, statements_export, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *board_routes(),
        *([] if settings.production else graphiql_routes()),
    ]
    # The access gate (security/gate.py) answers every unauthenticated or oversized request
    # before it reaches a route; it reads "pool" and "redis" from the lifespan state.
    gate = Middleware(
        AccessGate, production=settings.production, metrics_token_required=settings.metrics_token_required,
        authenticator=Authenticator(TokenCache(settings.token_cache_seconds)),
        rate_limiter=IngestRateLimiter(settings.ingest_rate_per_minute,
                                       namespace=f"carewatch:{settings.events_topic}"),
        cost_schema=schema._schema, max_query_cost=settings.max_query_cost,
    )
    # RequestMetrics is outermost, so the gate's refusals are counted too.
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(RequestMetrics), gate])


def _check_database(database_url: str) -> None:
    """Fail with clear words when PostgreSQL or the Carewatch database is missing."""
    check_postgres(database_url)
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1 FROM schema_migrations LIMIT 1")
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ServiceUnavailable(f"{first_line}: run `carewatch migrate` first") from exc
    except psycopg.errors.UndefinedTable as exc:
        raise ServiceUnavailable("the database has no Carewatch tables: run `carewatch migrate`") from exc


def freeze_start_up_objects() -> None:
    """Keep what start-up made (modules, the schema, the app: about 90,000 objects) out of the collector's
    sight. Without this every full collection walked them all: 140-160 ms with the event loop stopped,
    which showed as the API's p99 under load (docs/api-load.md)."""
    gc.collect()
    gc.freeze()


def run_api(settings: Settings, host: str, port: int, reuse_port: bool = False) -> int:
    """`carewatch api`: serve until interrupted; `reuse_port` shares the port with other API processes."""
    import uvicorn

    _check_database(settings.database_url)
    parse_clock(settings.clock)  # a bad CAREWATCH_CLOCK fails here, with its message, not mid-request
    # log_config=None: uvicorn's lines go through carewatch.logs (plain or JSON), not its coloured handlers.
    # Without permessage-deflate by default: each websocket compresses with its own zlib state, so one alert
    # for 10,000 subscribers was compressed 10,000 times, a third of the fan-out's CPU (docs/api-load.md).
    config = uvicorn.Config(create_app(settings), host=host, port=port, lifespan="on", log_level="info",
                            log_config=None, ws_per_message_deflate=settings.websocket_compression)
    freeze_start_up_objects()
    server = uvicorn.Server(config)
    if not reuse_port:
        server.run()
        return 0
    # Several processes bound to one port with SO_REUSEPORT: the kernel spreads new connections over them.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    server.run(sockets=[sock])
    return 0
