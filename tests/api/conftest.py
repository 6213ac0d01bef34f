"""Rows of contracts/examples/valid.jsonl as the stream would leave them, and the API app over them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
import pytest
from starlette.testclient import TestClient

from carewatch.clock import FixedClock
from carewatch.security.tokens import create_token
from carewatch.services import Broker
from carewatch.settings import Settings
from carewatch.web import create_app

# A week after SH-1: Monday 13 April 2026, 13:00 BST.
NOW = datetime(2026, 4, 13, 12, 0, tzinfo=UTC)

SH1_ATTENDANCE = [
    {"carerId": "CR-001", "clockInAt": "2026-04-06T07:02:10+00:00", "clockOutAt": "2026-04-06T07:31:40+00:00",
     "method": "nfc", "verified": True},
    {"carerId": "CR-002", "clockInAt": "2026-04-06T07:03:00+00:00", "clockOutAt": "2026-04-06T07:30:05+00:00",
     "method": "gps", "verified": True},
]
PLAN = [{"service_type": "personal_care", "minutes_per_week": 840, "carers": 1},
        {"service_type": "personal_care", "minutes_per_week": 210, "carers": 2}]
RATES = [{"service_type": "personal_care", "band": "day", "pence_per_hour": 3214},
         {"service_type": "personal_care", "band": "night", "pence_per_hour": 3500},
         {"service_type": "personal_care", "band": "weekend", "pence_per_hour": 3400},
         {"service_type": "personal_care", "band": "bank_holiday", "pence_per_hour": 4800}]

_LEDGER = """
INSERT INTO shift_ledger (shift_id, package_id, provider_id, starts_at, planned_seconds, scheduled_seconds,
    actual_seconds, payable_seconds, overrun_seconds, unverified_seconds, provider_cancelled_seconds,
    day_seconds, night_seconds, weekend_seconds, bank_holiday_seconds, rate_seconds, spend_pence,
    first_clock_in_at, open_attendances, distinct_carers, attendance)
VALUES (%s, 'PKG-100', 'PRV-ACORN', %s, %s, %s, %s, %s, 0, 0, 0, 0, 0, 0, %s, %s, %s, %s, 0, %s, %s)
"""


def seed_valid_example(database_url: str) -> None:
    """PKG-100, SH-1 (attended by two carers on Easter Monday), SH-2 (cancelled by the person), INV-77."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO commissioners VALUES ('LA-WIRRAL', 'Wirral Council', 'local_authority',"
                     " 'Europe/London', '2026-03-01T09:00:00Z')")
        conn.execute("INSERT INTO providers VALUES ('PRV-ACORN', 'Acorn Home Care', '2026-03-01T09:00:00Z')")
        conn.execute(
            "INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id,"
            " nhs_number, person_lat, person_lon, period_start, period_end, budget_pence, contingency_pence,"
            " plan, rates,"
            " planned_minutes_per_week, approved_at) VALUES ('PKG-100', 'LA-WIRRAL', 'PRV-ACORN', 'ISF',"
            " 'P-100', '9434765919', 53.4098, -3.0456, '2026-04-01', '2027-03-31', 3500000, 150000, %s, %s,"
            " 1260, '2026-03-02T10:00:00Z')",
            (json.dumps(PLAN), json.dumps(RATES)))
        conn.execute(
            "INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at, service_type,"
            " carers_required, carer_ids, required_competencies, scheduled_at, cancelled_by, cancel_reason,"
            " cancelled_at) VALUES"
            " ('SH-1', 'PKG-100', 'PRV-ACORN', '2026-04-06T08:00:00+01:00', '2026-04-06T08:30:00+01:00',"
            "  'personal_care', 2, '{CR-001,CR-002}', '{moving_and_handling}', '2026-04-06T06:00:00Z',"
            "  NULL, NULL, NULL),"
            " ('SH-2', 'PKG-100', 'PRV-ACORN', '2026-04-07T08:00:00+01:00', '2026-04-07T08:30:00+01:00',"
            "  'personal_care', 1, '{CR-001}', '{}', '2026-04-06T06:00:00Z',"
            "  'person', 'in hospital', '2026-04-06T09:00:00Z')")
        conn.execute(_LEDGER, ("SH-1", "2026-04-06T07:00:00Z", 3600, 3600, 3395, 3395, 3395, 3395 * 4800,
                               "4526.666667", "2026-04-06T07:02:10Z", 2, json.dumps(SH1_ATTENDANCE)))
        conn.execute(_LEDGER, ("SH-2", "2026-04-07T07:00:00Z", 1800, 0, 0, 0, 0, 0, 0, None, 0, "[]"))
        conn.execute(
            "INSERT INTO invoices VALUES ('INV-77', 'PKG-100', 'PRV-ACORN', '2026-04-01', '2026-04-30', 3214,"
            " %s, '2026-05-02T12:00:00Z')",
            (json.dumps([{"shift_id": "SH-1", "service_type": "personal_care", "minutes": 60,
                          "amount_pence": 3214}]),))


@pytest.fixture()
def now() -> datetime:
    return NOW


@pytest.fixture()
def seeded_database_url(fresh_database_url: str) -> str:
    seed_valid_example(fresh_database_url)
    return fresh_database_url


@pytest.fixture()
def api_settings(seeded_database_url: str, redis_url: str, broker: Broker) -> Settings:
    # No response cache: these tests write rows straight to the tables between queries, which no writer
    # announces (tests/api/test_response_cache_api.py tests the cache with the writers that do).
    return Settings(database_url=seeded_database_url, redis_url=redis_url, kafka_url=broker.kafka_url,
                    events_topic=f"care-events-{uuid.uuid4().hex[:8]}", environment="development",
                    response_cache_ttl_ms=0)


def token_for(database_url: str, role: str, scope: str | None = None) -> dict[str, str]:
    """An Authorization header with a new token of this role and scope."""

    async def create() -> str:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            created = await create_token(conn, role, scope, name="tests")
            await conn.commit()
            return created.secret

    return {"Authorization": f"Bearer {asyncio.run(create())}"}


@pytest.fixture()
def bearer() -> Callable[[str, str, str | None], dict[str, str]]:
    """`bearer(database_url, role, scope)`: an Authorization header with a new token."""
    return token_for


@pytest.fixture()
def client(api_settings: Settings) -> Iterator[TestClient]:
    """The API with lifespan on; the access gate wants a token on every request: these read as admin."""
    admin = token_for(api_settings.database_url, "admin")
    with TestClient(create_app(api_settings, clock=FixedClock(NOW)), headers=admin) as c:
        yield c


class Gql(Protocol):
    def __call__(self, query: str, **variables: object) -> Any: ...


@pytest.fixture()
def gql(client: TestClient) -> Gql:
    """POST a query to the app; fail the test on any GraphQL error; return `data`."""

    def run(query: str, **variables: object) -> Any:
        response = client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    return run
