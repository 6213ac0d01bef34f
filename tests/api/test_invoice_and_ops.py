"""Invoice matching, health, metrics, production mode and direct schema execution with scoped viewers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from carewatch.clock import FixedClock
from carewatch.domain.identifiers import mask_nhs_number
from carewatch.graphql.alerts_hub import hub_of
from carewatch.graphql.context import Context
from carewatch.graphql.loaders import make_loaders
from carewatch.graphql.schema import schema
from carewatch.security.roles import Role, Viewer
from carewatch.settings import Settings
from carewatch.store.db import make_pool
from carewatch.web import create_app

pytestmark = pytest.mark.services


def test_invoice_matched_with_an_overstated_line(client: TestClient, gql: Any) -> None:
    data = gql("""{ invoice(id: "INV-77") {
        id packageId status invoicedPence deliveredPence matchedPence orderedPence reasons
        lines { shiftId invoicedMinutes payableMinutes finding } } }""")
    invoice = data["invoice"]
    # 3214p billed <= 4527p delivered + tolerance and the line has attendance behind it: MATCHED;
    # but it bills 60 minutes against 56.58 payable (> 1 minute over): OVERSTATED.
    assert invoice["status"] == "MATCHED"
    assert invoice["invoicedPence"] == 3214 and invoice["deliveredPence"] == 4527
    assert invoice["matchedPence"] == 3214
    assert invoice["lines"] == [{"shiftId": "SH-1", "invoicedMinutes": 60.0,
                                 "payableMinutes": pytest.approx(3395 / 60), "finding": "OVERSTATED"}]
    assert any("overstated" in r for r in invoice["reasons"])
    assert gql('{ invoice(id: "INV-NONE") { id } }') == {"invoice": None}


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


def test_healthz_says_503_when_redis_is_away(api_settings: Settings, now: datetime) -> None:
    away = Settings(database_url=api_settings.database_url, redis_url="redis://127.0.0.1:1/0",
                    kafka_url=api_settings.kafka_url)
    with TestClient(create_app(away, clock=FixedClock(now))) as c:  # /healthz needs no token
        response = c.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["postgres"] == "ok" and body["checks"]["redis"].startswith("unavailable")


def test_production_hides_graphiql_and_introspection_and_masks_errors(
        api_settings: Settings, now: datetime, bearer: Any) -> None:
    prod = Settings(database_url=api_settings.database_url, redis_url=api_settings.redis_url,
                    kafka_url=api_settings.kafka_url, environment="production")
    admin = bearer(api_settings.database_url, "admin", None)
    with TestClient(create_app(prod, clock=FixedClock(now)), headers=admin) as c:
        page = c.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        intro = c.post("/graphql", json={"query": "{ __schema { types { name } } }"}).json()
        assert intro.get("data") is None and intro["errors"]
        # the caller's own mistake stays readable
        refused = c.post("/graphql", json={"query": "{ shifts(first: 501) { edges { cursor } } }"}).json()
        assert "at most 500" in refused["errors"][0]["message"]
        ok = c.post("/graphql", json={"query": '{ shift(id: "SH-1") { status } }'}).json()
        assert ok == {"data": {"shift": {"status": "COMPLETED"}}}


async def _execute(database_url: str, viewer: Viewer, now: datetime, query: str) -> Any:
    settings = Settings(database_url=database_url)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        request = Request({"type": "http", "method": "POST", "path": "/graphql", "headers": []})
        context = Context(request, None, viewer, pool, FixedClock(now), settings,
                          make_loaders(pool, viewer, settings.timezone), hub_of(settings))
        result = await schema.execute(query, context_value=context)
    finally:
        await pool.close()
    assert result.errors is None, result.errors
    return result.data


SCOPED = """{ package(id: "PKG-100") { id person { nhsNumber } } shift(id: "SH-1") { id }
  invoice(id: "INV-77") { id } shifts { edges { node { id } } } packages { edges { node { id } } } }"""


async def test_schema_execute_scopes_every_read_to_the_viewer(seeded_database_url: str,
                                                              now: datetime) -> None:
    commissioner = await _execute(seeded_database_url, Viewer(Role.COMMISSIONER, "LA-WIRRAL"), now, SCOPED)
    masked = mask_nhs_number("9434765919")
    assert commissioner["package"] == {"id": "PKG-100", "person": {"nhsNumber": masked}}
    assert commissioner["package"]["person"]["nhsNumber"] != "9434765919"
    assert commissioner["invoice"] == {"id": "INV-77"}
    assert [e["node"]["id"] for e in commissioner["shifts"]["edges"]] == ["SH-1", "SH-2"]

    for outsider in (Viewer(Role.PROVIDER, "PRV-OTHER"), Viewer(Role.COMMISSIONER, "ICB-ELSEWHERE"),
                     Viewer(Role.INGEST, "PRV-ACORN")):
        data = await _execute(seeded_database_url, outsider, now, SCOPED)
        assert data == {"package": None, "shift": None, "invoice": None,
                        "shifts": {"edges": []}, "packages": {"edges": []}}, outsider

    provider = await _execute(seeded_database_url, Viewer(Role.PROVIDER, "PRV-ACORN"), now, SCOPED)
    assert provider["shift"] == {"id": "SH-1"} and provider["package"]["id"] == "PKG-100"


def test_invoices_list_by_period_and_package_under_scope(client: TestClient, gql: Any, api_settings: Settings,
                                                         bearer: Any) -> None:
    query = """query($from: Date, $to: Date) {
        invoices(filter: {from: $from, to: $to}) { edges { cursor node { id status matchedPence } }
                                                   pageInfo { hasNextPage } }
        package(id: "PKG-100") { invoices(first: 1) { edges { node { id history { invoicedPence } } } } } }"""
    # INV-77 runs from 1 April 2026: inside [2026-04-01, 2026-05-01), outside [2026-04-02, ...).
    data = gql(query, **{"from": "2026-04-01", "to": "2026-05-01"})
    assert [(e["node"]["id"], e["node"]["status"], e["node"]["matchedPence"]) for e in data["invoices"]["edges"]] == [
        ("INV-77", "MATCHED", 3214)]
    assert data["invoices"]["pageInfo"] == {"hasNextPage": False}
    assert data["package"]["invoices"]["edges"] == [{"node": {"id": "INV-77", "history": []}}]
    assert gql(query, **{"from": "2026-04-02"})["invoices"]["edges"] == []
    # Another provider's token: the invoice does not exist for it; its own provider's does.
    for scope, want in (("PRV-OTHER", []), ("PRV-ACORN", ["INV-77"])):
        response = client.post("/graphql", json={"query": "{ invoices { edges { node { id } } } }"},
                               headers=bearer(api_settings.database_url, "provider", scope))
        assert [e["node"]["id"] for e in response.json()["data"]["invoices"]["edges"]] == want
