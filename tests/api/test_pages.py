"""GraphiQL from vendored files and the alert board's files: local assets only, served, and the queries
the board relies on (clock, me, alertKinds)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from carewatch.clock import AcceleratedClock, FixedClock
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".html": "text/html"}


def _references(html: str) -> list[str]:
    return [r for r in REFERENCE.findall(html) if not r.startswith(("data:", "#"))]


def _assert_served(client: TestClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    suffix = path[path.rfind("."):]
    assert CONTENT_TYPES[suffix] in response.headers["content-type"], (path, response.headers["content-type"])
    assert "default-src 'self'" in response.headers["content-security-policy"]
    return response.text


def test_graphiql_uses_only_local_assets_and_shows_where_the_token_goes(client: TestClient) -> None:
    page = client.get("/graphql", headers={"accept": "text/html", "authorization": ""})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    assets = _references(page.text)
    assert {"/graphiql/vendor/react-18.3.1/react.production.min.js",
            "/graphiql/vendor/react-dom-18.3.1/react-dom.production.min.js",
            "/graphiql/vendor/graphiql-3.8.3/graphiql.min.js",
            "/graphiql/vendor/graphiql-3.8.3/graphiql.min.css"} <= set(assets) - {"/board/"}
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not on this server"
        if asset != "/board/":
            body = _assert_served(client, asset)
            assert len(body) > 100
    script = client.get("/graphiql/carewatch-graphiql.js").text
    assert 'Authorization: "Bearer <paste a token' in script  # the header template the user fills in
    assert "wsConnectionParams: { authorization }" in script  # and subscriptions carry it too
    for licence in ("graphiql-3.8.3", "react-18.3.1", "react-dom-18.3.1"):
        assert "MIT License" in client.get(f"/graphiql/vendor/{licence}/LICENSE").text


def test_production_serves_no_graphiql(api_settings: Settings, now: datetime) -> None:
    production = dataclasses.replace(api_settings, environment="production")
    with TestClient(create_app(production, clock=FixedClock(now))) as c:
        assert c.get("/graphiql/carewatch-graphiql.js").status_code == 404
        assert c.get("/graphql", headers={"accept": "text/html"}).status_code == 401
        assert c.get("/board/").status_code == 200  # the board is for production users


def test_the_board_is_served_with_its_modules(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/board/"
    assert client.get("/board", follow_redirects=False).headers["location"] == "/board/"
    page = client.get("/board/", headers={"authorization": ""})
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert re.search(r'<label for="token">Token</label>', page.text)
    assert 'aria-live="assertive"' in page.text and 'aria-live="polite"' in page.text
    for asset in _references(page.text):
        assert not asset.startswith(("http:", "https:", "//")), asset
    modules = ["app.js", "alerts.js", "shifts.js", "packages.js", "graphql.js", "format.js", "board.css"]
    for name in modules:
        text = _assert_served(client, f"/board/{name}")
        assert "http://" not in text.replace('"http://www.w3.org/2000/svg"', "") and "https://" not in text
        for imported in re.findall(r'from "\./([a-z]+\.js)"', text):
            assert imported in modules, f"{name} imports {imported}, which is not served"


def test_clock_me_and_alert_kinds(client: TestClient, gql: Any, api_settings: Settings, bearer: Any) -> None:
    data = gql("{ clock { now speed simulated timeZone todayStartsAt todayEndsAt } me { role mayActOnAlerts }"
               " alertKinds { kind severity } }")
    assert data["clock"] == {"now": "2026-04-13T12:00:00+00:00", "speed": 0.0, "simulated": True,
                             "timeZone": "Europe/London", "todayStartsAt": "2026-04-12T23:00:00+00:00",
                             "todayEndsAt": "2026-04-13T23:00:00+00:00"}  # Monday 13 April, BST
    assert data["me"] == {"role": "admin", "mayActOnAlerts": True}
    assert {"kind": "MISSED_VISIT", "severity": "critical"} in data["alertKinds"]
    reader = bearer(api_settings.database_url, "commissioner", "LA-WIRRAL")
    me = client.post("/graphql", json={"query": "{ me { role commissionerId providerId mayActOnAlerts } }"},
                     headers=reader).json()["data"]["me"]
    assert me == {"role": "commissioner", "commissionerId": "LA-WIRRAL", "providerId": None, "mayActOnAlerts": False}


def test_clock_speed_and_a_25_hour_day(api_settings: Settings, bearer: Any) -> None:
    # 00:30 BST on Sunday 25 October 2026, the night the clocks go back, running at 60x.
    clock = AcceleratedClock(datetime(2026, 10, 24, 23, 30, tzinfo=UTC), datetime.now(UTC), 60.0)
    admin = bearer(api_settings.database_url, "admin", None)
    with TestClient(create_app(api_settings, clock=clock), headers=admin) as c:
        read = c.post("/graphql", json={"query": "{ clock { speed simulated todayStartsAt todayEndsAt } }"}
                      ).json()["data"]["clock"]
    assert read == {"speed": 60.0, "simulated": True, "todayStartsAt": "2026-10-24T23:00:00+00:00",
                    "todayEndsAt": "2026-10-26T00:00:00+00:00"}
