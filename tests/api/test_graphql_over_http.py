"""GraphQL over HTTP per its spec: media types, status codes, GET; and the graphql-http audit (npm)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from carewatch.services import Broker
from procs import api_server, create_token

pytestmark = pytest.mark.services

AUDIT = Path(__file__).resolve().parents[1] / "http_audit"
BOTH = "application/graphql-response+json, application/json;q=0.9"


def test_graphql_response_json_is_answered_in_kind(client: TestClient) -> None:
    ok = client.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": BOTH})
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/graphql-response+json; charset=utf-8"
    assert ok.json() == {"data": {"__typename": "Query"}}
    legacy = client.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": "application/json"})
    assert legacy.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("query", ["{", "{ noSuchField }"])
def test_a_request_error_is_400_without_data_for_the_new_media_type(client: TestClient, query: str) -> None:
    new = client.post("/graphql", json={"query": query}, headers={"accept": BOTH})
    assert new.status_code == 400 and "data" not in new.json() and new.json()["errors"]
    legacy = client.post("/graphql", json={"query": query}, headers={"accept": "application/json"})
    assert legacy.status_code == 200 and "data" not in legacy.json() and legacy.json()["errors"]


def test_variable_coercion_failure_is_a_request_error(client: TestClient) -> None:
    body = {"query": "query($id: ID!) { shift(id: $id) { id } }", "variables": {"id": None}}
    response = client.post("/graphql", json=body, headers={"accept": BOTH})
    assert response.status_code == 400 and "data" not in response.json()


def test_a_field_error_keeps_data_and_200(client: TestClient) -> None:
    response = client.post("/graphql", json={"query": "{ shifts(first: 501) { edges { cursor } } }"},
                           headers={"accept": BOTH})
    assert response.status_code == 200
    assert response.json()["data"] is None and "at most 500" in response.json()["errors"][0]["message"]


def test_get_queries_and_no_mutations_over_get(client: TestClient) -> None:
    got = client.get("/graphql", params={"query": '{ shift(id: "SH-1") { id } }'}, headers={"accept": BOTH})
    assert got.status_code == 200 and got.json() == {"data": {"shift": {"id": "SH-1"}}}
    mutation = client.get("/graphql", params={"query": 'mutation { acknowledgeAlert(id: "1") { id } }'})
    assert mutation.status_code == 405 and mutation.headers["allow"] == "POST"
    assert "use POST" in mutation.json()["errors"][0]["message"]


def test_unacceptable_accept_and_unsupported_content_type(client: TestClient) -> None:
    refused = client.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": "text/plain"})
    assert refused.status_code == 406 and refused.json()["errors"]
    plain = client.post("/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "text/plain"})
    assert plain.status_code == 415 and "application/json" in plain.json()["errors"][0]["message"]
    broken = client.post("/graphql", content=b'{ "not a JSON', headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["errors"]


def test_graphql_http_audit_passes_without_warnings(broker: Broker, fresh_database_url: str,
                                                    redis_url: str) -> None:
    """The third-party audit (npm `graphql-http`, `serverAudits`) against the real API process."""
    node = shutil.which("node")
    assert node, "node is needed for the GraphQL-over-HTTP audit (Debian: apt-get install nodejs npm)"
    assert (AUDIT / "node_modules" / "graphql-http").is_dir(), (
        f"the audit's packages are missing: run `npm ci` in {AUDIT} (.ci/run and ops/setup do)")
    token = create_token(fresh_database_url, "admin")
    with api_server(broker, fresh_database_url, redis_url, f"care-events-{uuid.uuid4().hex[:8]}") as base:
        done = subprocess.run(
            [node, str(AUDIT / "audit.mjs")], cwd=AUDIT, capture_output=True, text=True, timeout=120,
            env={"PATH": "/usr/bin:/bin", "CAREWATCH_AUDIT_URL": f"{base}/graphql",
                 "CAREWATCH_AUDIT_TOKEN": token})
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) >= 60  # graphql-http 1.23.1 has 61 server audits
    failed = [r for r in results if r["status"] != "ok"]
    assert failed == [], json.dumps(failed, indent=1)
