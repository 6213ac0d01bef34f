"""/readyz (no token: orchestrators probe it) says whether the migrated database and Redis answer; every
HTTP answer, the access gate's refusals included, is counted and timed by route."""

from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from carewatch.clock import FixedClock
from carewatch.request_metrics import route_of
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services


def _count(route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value("carewatch_api_requests_total",
                                      {"route": route, "method": method, "status": status})
    return value or 0.0


def test_readyz_is_200_when_the_database_and_redis_answer(api_settings: Settings, now: datetime) -> None:
    with TestClient(create_app(api_settings, clock=FixedClock(now))) as c:
        response = c.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


def test_readyz_is_503_with_the_reason_when_redis_is_away(api_settings: Settings, now: datetime) -> None:
    away = Settings(database_url=api_settings.database_url, redis_url="redis://127.0.0.1:1/0",
                    kafka_url=api_settings.kafka_url)
    with TestClient(create_app(away, clock=FixedClock(now))) as c:
        response = c.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("unavailable: ")


def test_readyz_is_503_on_a_database_without_migrations(api_settings: Settings, now: datetime) -> None:
    import psycopg

    with psycopg.connect(api_settings.database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE schema_migrations")
    with TestClient(create_app(api_settings, clock=FixedClock(now))) as c:
        response = c.get("/readyz")
    assert response.status_code == 503 and "schema_migrations" in response.json()["checks"]["postgres"]


def test_requests_and_refusals_are_counted_by_route(api_settings: Settings, now: datetime) -> None:
    before_refused = _count("/graphql", "POST", "401")
    before_ready = _count("/readyz", "GET", "200")
    before_other = _count("other", "GET", "404")
    with TestClient(create_app(api_settings, clock=FixedClock(now))) as c:
        assert c.post("/graphql", json={"query": "{ packages { edges { node { id } } } }"}).status_code == 401
        assert c.get("/readyz").status_code == 200
        assert c.get("/wp-admin/setup.php").status_code == 404
    assert _count("/graphql", "POST", "401") == before_refused + 1
    assert _count("/readyz", "GET", "200") == before_ready + 1
    assert _count("other", "GET", "404") == before_other + 1
    assert REGISTRY.get_sample_value("carewatch_api_request_seconds_count",
                                     {"route": "/readyz", "method": "GET"}) >= 1


def test_routes_are_a_closed_set() -> None:
    assert route_of("/graphql/") == "/graphql" and route_of("/board/app.js") == "/board"
    assert route_of("/graphqlx") == "other" and route_of("/") == "other"
