"""The query cost limit through the real app: refused before execution, named in the error, counted."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from tests.api.conftest import NOW, token_for
from tests.unit.test_query_cost import CONTRACT_ROOTS, PORTAL_PACKAGES, PORTAL_SHIFTS, SCHEMA, contract_operation

from carewatch.clock import FixedClock
from carewatch.settings import Settings
from carewatch.web import create_app

pytestmark = pytest.mark.services


def _refusals() -> float:
    return REGISTRY.get_sample_value("carewatch_query_cost_refused_total") or 0.0


def test_every_contract_operation_at_first_500_runs(client: TestClient) -> None:
    for root in (r for r in CONTRACT_ROOTS if r in SCHEMA.query_type.fields):  # type: ignore[union-attr]
        response = client.post("/graphql", json={"query": contract_operation(root)})
        assert response.status_code == 200, (root, response.text)
        assert "data" in response.json() and "QUERY_COST" not in response.text, (root, response.text)


def test_15_aliases_are_refused_naming_cost_and_limit_and_counted(client: TestClient) -> None:
    before = _refusals()
    aliased = "{ " + " ".join(f"a{i}: {PORTAL_PACKAGES}" for i in range(15)) + " }"
    response = client.post("/graphql", json={"query": aliased})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    # 15 x (1 + 500 x 9) = 67,515 against the default 25,000
    assert error["extensions"] == {"code": "QUERY_COST_OVER_LIMIT", "cost": 67_515, "limit": 25_000}
    assert "query cost 67,515 is over the limit of 25,000" in error["message"]
    assert _refusals() == before + 1
    shifts = "{ " + " ".join(f"a{i}: {PORTAL_SHIFTS}" for i in range(15)) + " }"
    refused = client.get("/graphql", params={"query": shifts})
    assert refused.status_code == 400 and refused.json()["errors"][0]["extensions"]["cost"] == 15 * 3_501
    assert _refusals() == before + 2


def test_a_batch_of_10_is_refused_though_each_passes(client: TestClient) -> None:
    one = {"query": "{ " + PORTAL_PACKAGES + " }"}
    assert client.post("/graphql", json=[one]).status_code == 200
    response = client.post("/graphql", json=[one] * 10)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["cost"] == 10 * 4_501


def test_the_limit_is_a_setting(api_settings: Settings) -> None:
    tight = dataclasses.replace(api_settings, max_query_cost=100)
    with TestClient(create_app(tight, clock=FixedClock(NOW)),
                    headers=token_for(tight.database_url, "admin")) as client:
        assert client.post("/graphql", json={"query": "{ packages(first: 49) { edges { cursor } } }"}
                           ).status_code == 200  # 1 + 49 x 2 = 99
        over = client.post("/graphql", json={"query": "{ packages(first: 50) { edges { cursor } } }"})
        assert over.status_code == 400 and over.json()["errors"][0]["extensions"]["cost"] == 101


def test_fragments_that_double_are_refused_at_once(client: TestClient) -> None:
    """Thirty fragments each spreading the next twice: 2^30 walks of the cost rule before (the event loop held
    for hours); each fragment costed once now, and refused."""
    n = 30
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    query = "{ ...F0 } " + fragments + f" fragment F{n} on Query {{ me {{ role }} }}"
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["cost"] == 2**n * 2

