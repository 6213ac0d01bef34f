"""Who sees what, through the real app: every root field, nested field, mutation and subscription,
for every role, over two commissioners (LA-A, LA-B) and two providers (PRV-X, PRV-Y).

Three packages span the combinations, each with a shift (and its ledger), an invoice and an alert:

    AX: LA-A funds, PRV-X delivers      AY: LA-A funds, PRV-Y delivers      BY: LA-B funds, PRV-Y delivers

The matrix is parametrised by (viewer, object), so a leak fails a named cell such as
`test_single_object[provider-X-BY-invoice]`. Outside its scope an object does not exist for the
caller: null or absent, never an error that tells it apart from an id that was never there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import redis
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from carewatch.alerts.bus import Channels
from carewatch.clock import FixedClock
from carewatch.graphql.alerts_hub import AlertHub
from carewatch.graphql.schema import build_schema
from carewatch.security.tokens import create_token
from carewatch.settings import Settings
from carewatch.web import create_app
from support import make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 13, 12, 0, tzinfo=UTC)
STARTS = datetime(2026, 4, 6, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Owned:
    key: str
    commissioner: str
    provider: str
    nhs: str
    carer_ni: str

    @property
    def package(self) -> str:
        return f"PKG-{self.key}"

    @property
    def shift(self) -> str:
        return f"SH-{self.key}"

    @property
    def invoice(self) -> str:
        return f"INV-{self.key}"

    @property
    def carer(self) -> str:
        return f"CR-{self.key}"


OBJECTS = {
    "AX": Owned("AX", "LA-A", "PRV-X", "9434765919", "AB123456C"),
    "AY": Owned("AY", "LA-A", "PRV-Y", "4010232137", "CE654321A"),
    "BY": Owned("BY", "LA-B", "PRV-Y", "9876543210", "JG112233D"),
}
VIEWERS: dict[str, tuple[str, str | None]] = {
    "admin": ("admin", None),
    "commissioner-A": ("commissioner", "LA-A"),
    "safeguarding-A": ("safeguarding", "LA-A"),
    "provider-X": ("provider", "PRV-X"),
    "commissioner-B": ("commissioner", "LA-B"),
    "provider-Y": ("provider", "PRV-Y"),
}
MAY_ACT = {"admin", "safeguarding-A"}  # contracts/GRAPHQL.md: safeguarding and admin act on alerts


def sees(viewer: str, obj: Owned) -> bool:
    role, scope = VIEWERS[viewer]
    if role == "admin":
        return True
    if role in ("commissioner", "safeguarding"):
        return obj.commissioner == scope
    return obj.provider == scope


def visible_keys(viewer: str) -> list[str]:
    return [k for k, o in OBJECTS.items() if sees(viewer, o)]


CELLS = [pytest.param(v, k, id=f"{v}-{k}") for v in VIEWERS for k in OBJECTS]


def _seed(url: str) -> dict[str, int]:
    """Rows as the stream would leave them; returns the alert id of each object key."""
    alert_ids: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        for la in ("LA-A", "LA-B"):
            conn.execute("INSERT INTO commissioners VALUES (%s, %s, 'local_authority', 'Europe/London',"
                         " '2026-03-01T09:00:00Z')", (la, f"Council {la}"))
        for prv in ("PRV-X", "PRV-Y"):
            conn.execute("INSERT INTO providers VALUES (%s, %s, '2026-03-01T09:00:00Z')", (prv, f"Care {prv}"))
        for o in OBJECTS.values():
            conn.execute(
                "INSERT INTO carers (carer_id, provider_id, ni_number, pay_pence_per_hour, registered_at)"
                " VALUES (%s, %s, %s, 1300, '2026-03-01T09:00:00Z')", (o.carer, o.provider, o.carer_ni))
            conn.execute(
                "INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id,"
                " nhs_number, person_lat, person_lon, period_start, period_end, budget_pence,"
                " contingency_pence, plan, rates, planned_minutes_per_week, approved_at)"
                " VALUES (%s, %s, %s, 'ISF', %s, %s, 53.4, -3.0, '2026-04-01', '2027-03-31', 3500000, 150000,"
                " %s, %s, 210, '2026-03-02T10:00:00Z')",
                (o.package, o.commissioner, o.provider, f"P-{o.key}", o.nhs,
                 json.dumps([{"service_type": "personal_care", "minutes_per_week": 210, "carers": 1}]),
                 json.dumps([{"service_type": "personal_care", "band": b, "pence_per_hour": 3000}
                             for b in ("day", "night", "weekend", "bank_holiday")])))
            conn.execute(
                "INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at, service_type,"
                " carers_required, carer_ids, scheduled_at) VALUES (%s, %s, %s, %s, %s, 'personal_care', 1,"
                " %s, '2026-04-05T06:00:00Z')",
                (o.shift, o.package, o.provider, STARTS, STARTS + timedelta(minutes=30), [o.carer]))
            attendance = [{"carerId": o.carer, "clockInAt": STARTS.isoformat(),
                           "clockOutAt": (STARTS + timedelta(minutes=30)).isoformat(),
                           "method": "nfc", "verified": True}]
            conn.execute(
                "INSERT INTO shift_ledger (shift_id, package_id, provider_id, starts_at, planned_seconds,"
                " scheduled_seconds, actual_seconds, payable_seconds, overrun_seconds, unverified_seconds,"
                " provider_cancelled_seconds, day_seconds, night_seconds, weekend_seconds,"
                " bank_holiday_seconds, rate_seconds, spend_pence, first_clock_in_at, open_attendances,"
                " distinct_carers, attendance)"
                " VALUES (%s, %s, %s, %s, 1800, 1800, 1800, 1800, 0, 0, 0, 1800, 0, 0, 0, %s, 1500, %s, 0, 1, %s)",
                (o.shift, o.package, o.provider, STARTS, 1800 * 3000, STARTS, json.dumps(attendance)))
            conn.execute(
                "INSERT INTO invoices VALUES (%s, %s, %s, '2026-04-01', '2026-04-30', 1500, %s,"
                " '2026-05-02T12:00:00Z')",
                (o.invoice, o.package, o.provider,
                 json.dumps([{"shift_id": o.shift, "service_type": "personal_care", "minutes": 30,
                              "amount_pence": 1500}])))
            row = conn.execute(
                "INSERT INTO alerts (kind, severity, subject_type, subject_id, raised_at, updated_at, message,"
                " package_id, shift_id, carer_id, provider_id, commissioner_id)"
                " VALUES ('LATE_START', 'warning', 'shift', %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (o.shift, STARTS, STARTS, f"late start on {o.shift}", o.package, o.shift, o.carer,
                 o.provider, o.commissioner)).fetchone()
            assert row is not None
            alert_ids[o.key] = int(row[0])
            conn.execute("INSERT INTO alert_history (alert_id, status, changed_at, changed_by, note)"
                         " VALUES (%s, 'open', %s, 'system', NULL)", (row[0], STARTS))
    return alert_ids


async def _secret(url: str, role: str, scope: str | None) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        created = await create_token(conn, role, scope, name="access-matrix")
        await conn.commit()
        return created.secret


@dataclass
class World:
    url: str
    settings: Settings
    client: TestClient
    tokens: dict[str, str]
    alert_ids: dict[str, int]

    def post(self, viewer: str, query: str, **variables: Any) -> dict[str, Any]:
        response = self.client.post("/graphql", json={"query": query, "variables": variables},
                                    headers={"Authorization": f"Bearer {self.tokens[viewer]}"})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def data(self, viewer: str, query: str, **variables: Any) -> dict[str, Any]:
        body = self.post(viewer, query, **variables)
        assert "errors" not in body, body["errors"]
        return dict(body["data"])


@pytest.fixture(scope="module")
def world(redis_url: str) -> Iterator[World]:
    url = make_database()
    alert_ids = _seed(url)
    tokens = {name: asyncio.run(_secret(url, role, scope)) for name, (role, scope) in VIEWERS.items()}
    tokens["ingest-X"] = asyncio.run(_secret(url, "ingest", "PRV-X"))
    settings = Settings(database_url=url, redis_url=redis_url, environment="development")
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        yield World(url, settings, client, tokens, alert_ids)


# ---- single objects by id, with every nested field -------------------------------------------------

PACKAGE_Q = """query($id: ID!) { package(id: $id) {
  id commissionerId providerId mechanism periodStart periodEnd budgetPence contingencyPence
  plannedMinutesPerWeek person { personId nhsNumber }
  delivery(from: "2026-04-06T00:00:00Z", to: "2026-04-13T00:00:00Z") { actualMinutes spendPence }
  rolling7Days { actualMinutes spendPence } budget { spentPence forecastSpendPence }
} }"""
SHIFT_Q = """query($id: ID!) { shift(id: $id) {
  id packageId providerId status startsAt endsAt serviceType carersRequired carerIds
  attendance { carerId clockInAt clockOutAt method verified } actualMinutes payableMinutes spendPence
} }"""
INVOICE_Q = """query($id: ID!) { invoice(id: $id) {
  id packageId providerId invoicedPence orderedPence deliveredPence matchedPence status
  lines { shiftId finding amountPence }
} }"""


@pytest.mark.parametrize(("viewer", "key"), CELLS)
@pytest.mark.parametrize("kind", ["package", "shift", "invoice"])
def test_single_object(world: World, viewer: str, key: str, kind: str) -> None:
    o = OBJECTS[key]
    query, object_id = {"package": (PACKAGE_Q, o.package), "shift": (SHIFT_Q, o.shift),
                        "invoice": (INVOICE_Q, o.invoice)}[kind]
    got = world.data(viewer, query, id=object_id)[kind]
    if not sees(viewer, o):
        assert got is None, f"{viewer} can read {object_id}"
        return
    assert got is not None and got["id"] == object_id
    if kind == "package":
        assert (got["commissionerId"], got["providerId"]) == (o.commissioner, o.provider)
        assert got["delivery"]["actualMinutes"] == 30.0 and got["delivery"]["spendPence"] == 1500
    elif kind == "shift":
        assert [a["carerId"] for a in got["attendance"]] == [o.carer]
        assert got["carerIds"] == [o.carer] and got["spendPence"] == 1500
    else:
        assert got["deliveredPence"] == 1500 and [ln["shiftId"] for ln in got["lines"]] == [o.shift]


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_unknown_ids_look_like_out_of_scope_ones(world: World, viewer: str) -> None:
    """Null for an id that never existed, exactly as for one out of scope: nothing to tell them apart."""
    for kind, query in (("package", PACKAGE_Q), ("shift", SHIFT_Q), ("invoice", INVOICE_Q)):
        assert world.post(viewer, query, id="NOPE-1") == {"data": {kind: None}}


# ---- lists, with and without filters naming somebody else ------------------------------------------

@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_lists(world: World, viewer: str) -> None:
    want = visible_keys(viewer)
    data = world.data(viewer, """{
      packages(first: 500) { edges { node { id person { nhsNumber } } } }
      shifts(first: 500) { edges { node { id attendance { carerId } } } }
      alerts(first: 500) { edges { node { id packageId history { status } } } }
    }""")
    assert [e["node"]["id"] for e in data["packages"]["edges"]] == [OBJECTS[k].package for k in want]
    assert sorted(e["node"]["id"] for e in data["shifts"]["edges"]) == sorted(OBJECTS[k].shift for k in want)
    assert sorted(int(e["node"]["id"]) for e in data["alerts"]["edges"]) == sorted(
        world.alert_ids[k] for k in want)


@pytest.mark.parametrize(("viewer", "key"), CELLS)
def test_filters_naming_an_object_do_not_widen_the_scope(world: World, viewer: str, key: str) -> None:
    o = OBJECTS[key]
    data = world.data(viewer, """query($c: ID!, $p: ID!, $pkg: ID!) {
      byCommissioner: packages(filter: {commissionerId: $c}) { edges { node { id } } }
      byProvider: packages(filter: {providerId: $p}) { edges { node { id } } }
      shifts(filter: {packageId: $pkg}) { edges { node { id } } }
      providerShifts: shifts(filter: {providerId: $p}) { edges { node { id } } }
      alerts(filter: {packageId: $pkg}) { edges { node { id } } }
      commissionerAlerts: alerts(filter: {commissionerId: $c, providerId: $p}) { edges { node { id } } }
    }""", c=o.commissioner, p=o.provider, pkg=o.package)

    def ids(field: str) -> set[str]:
        return {e["node"]["id"] for e in data[field]["edges"]}

    mine = {k for k in visible_keys(viewer)}
    assert ids("byCommissioner") == {OBJECTS[k].package for k in mine if OBJECTS[k].commissioner == o.commissioner}
    assert ids("byProvider") == {OBJECTS[k].package for k in mine if OBJECTS[k].provider == o.provider}
    assert ids("providerShifts") == {OBJECTS[k].shift for k in mine if OBJECTS[k].provider == o.provider}
    expect_own = sees(viewer, o)
    assert ids("shifts") == ({o.shift} if expect_own else set())
    assert ids("alerts") == ({str(world.alert_ids[key])} if expect_own else set())
    assert ids("commissionerAlerts") == ({str(world.alert_ids[key])} if expect_own else set())


# ---- personal identifiers --------------------------------------------------------------------------

@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_nhs_numbers_masked_for_all_but_admin(world: World, viewer: str) -> None:
    body = world.post(viewer, "{ packages { edges { node { id person { nhsNumber } } } } }")
    shown = {e["node"]["id"]: e["node"]["person"]["nhsNumber"] for e in body["data"]["packages"]["edges"]}
    assert shown, "every viewer here sees at least one package"
    raw = json.dumps(body)
    for o in OBJECTS.values():
        if o.package not in shown:
            continue
        if viewer == "admin":
            assert shown[o.package] == o.nhs
        else:
            assert shown[o.package] == "*******" + o.nhs[-3:]
            assert o.nhs not in raw


def test_carer_ni_numbers_are_not_exposed_anywhere(world: World) -> None:
    """Carers' NI numbers are stored but no field serves them, to any role (admin included)."""
    sdl = build_schema().as_str().lower()
    assert "ninumber" not in sdl and "ni_number" not in sdl and "nationalinsurance" not in sdl
    for viewer in VIEWERS:
        raw = json.dumps(world.post(viewer, """{
          packages { edges { node { id person { personId nhsNumber } } } }
          shifts { edges { node { id carerIds attendance { carerId } } } }
          alerts { edges { node { id message carerId } } }
        }"""))
        for o in OBJECTS.values():
            assert o.carer_ni not in raw


# ---- mutations -------------------------------------------------------------------------------------

ACK = 'mutation($id: ID!) { acknowledgeAlert(id: $id, note: "seen") { id status history { status } } }'
RESOLVE = 'mutation($id: ID!) { resolveAlert(id: $id, note: "sorted") { id status history { status } } }'


def _status(world: World, alert_id: int) -> str:
    with psycopg.connect(world.url) as conn:
        row = conn.execute("SELECT status FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


def _reopen(world: World, alert_id: int) -> None:
    with psycopg.connect(world.url) as conn:
        conn.execute("UPDATE alerts SET status = 'open', resolved_at = NULL WHERE id = %s", (alert_id,))
        conn.execute("DELETE FROM alert_history WHERE alert_id = %s AND status <> 'open'", (alert_id,))


def _error_shape(body: dict[str, Any], alert_id: int | str) -> tuple[Any, list[str]]:
    return body["data"], [e["message"].replace(str(alert_id), "<id>") for e in body["errors"]]


@pytest.mark.parametrize(("viewer", "key"), CELLS)
@pytest.mark.parametrize("mutation", ["acknowledgeAlert", "resolveAlert"])
def test_alert_mutations(world: World, viewer: str, key: str, mutation: str) -> None:
    query = ACK if mutation == "acknowledgeAlert" else RESOLVE
    alert_id = world.alert_ids[key]
    body = world.post(viewer, query, id=str(alert_id))
    if not sees(viewer, OBJECTS[key]):
        # Exactly what an id that never existed gets: nothing says the alert is there.
        never = world.post(viewer, query, id="987654321")
        assert _error_shape(body, alert_id) == _error_shape(never, "987654321")
        assert _status(world, alert_id) == "open"
        return
    if viewer not in MAY_ACT:
        assert body["data"] is None and body["errors"], body
        assert "only safeguarding and admin" in body["errors"][0]["message"]
        assert _status(world, alert_id) == "open"
        return
    try:
        assert "errors" not in body, body
        done = body["data"][mutation]
        want = "acknowledged" if mutation == "acknowledgeAlert" else "resolved"
        assert done["status"] == want and _status(world, alert_id) == want
        assert [h["status"] for h in done["history"]] == ["open", want]
    finally:
        _reopen(world, alert_id)


# ---- subscriptions over graphql-transport-ws ------------------------------------------------------

def _wire_alert(o: Owned, alert_id: int) -> dict[str, Any]:
    return {"id": alert_id, "kind": "LATE_START", "severity": "warning", "status": "open",
            "subject_type": "shift", "subject_id": o.shift, "raised_at": STARTS.isoformat(),
            "resolved_at": None, "updated_at": STARTS.isoformat(), "message": f"late start on {o.shift}",
            "package_id": o.package, "shift_id": o.shift, "carer_id": o.carer, "provider_id": o.provider,
            "commissioner_id": o.commissioner, "caused_by_late_data": False, "details": {}, "history": []}


def _hub(world: World) -> AlertHub:
    hub = world.client.app_state["carewatch"].hub
    assert isinstance(hub, AlertHub)
    return hub


def _subscribed(world: World, channel: str, publisher: redis.Redis) -> None:
    """Wait until this socket's subscription listens on the hub and the hub listens on Redis."""
    hub = _hub(world)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listening = sum(1 for s in list(hub.subscribers) if s.channel == channel)
        if listening == 1 and publisher.pubsub_numsub(channel)[0][1] > 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the subscription never started listening on {channel}")


def _idle_hub(world: World) -> None:
    hub = _hub(world)
    deadline = time.monotonic() + 5
    while hub.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)


def _run_subscription(world: World, viewer: str, query: str, channel: str,
                      messages: list[dict[str, Any]], want: int) -> list[dict[str, Any]]:
    """Subscribe as `viewer`, publish `messages` on `channel`, return the first `want` payloads."""
    _idle_hub(world)
    publisher = redis.Redis.from_url(world.settings.redis_url)
    try:
        with world.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            ws.send_json({"type": "connection_init",
                          "payload": {"authorization": f"Bearer {world.tokens[viewer]}"}})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
            _subscribed(world, channel, publisher)
            for message in messages:
                publisher.publish(channel, json.dumps(message))
            received = []
            for _ in range(want):
                message = ws.receive_json()
                assert message["type"] == "next", message
                received.append(message["payload"]["data"])
            ws.send_json({"id": "1", "type": "complete"})
            return received
    finally:
        publisher.close()


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_alerts_subscription(world: World, viewer: str) -> None:
    """Every alert is published; the viewer gets its own, in order, and then the repeated first one.

    The repeat closes the window: anything out of scope would have arrived before it.
    """
    want = visible_keys(viewer)
    wires = [_wire_alert(o, world.alert_ids[k]) for k, o in OBJECTS.items()]
    wires.append(_wire_alert(OBJECTS[want[0]], world.alert_ids[want[0]]))
    got = _run_subscription(world, viewer, "subscription { alerts { id commissionerId providerId carerId } }",
                            Channels.for_settings(world.settings).alerts, wires, len(want) + 1)
    assert [int(g["alerts"]["id"]) for g in got] == [world.alert_ids[k] for k in [*want, want[0]]]


@pytest.mark.parametrize("viewer", list(VIEWERS))
def test_shift_updates_subscription(world: World, viewer: str) -> None:
    want = visible_keys(viewer)
    # One message naming every shift, as the worker publishes a batch, then the single-shift form.
    updates = [{"shift_ids": [o.shift for o in OBJECTS.values()]}, {"shift_id": OBJECTS[want[0]].shift}]
    got = _run_subscription(
        world, viewer, "subscription { shiftUpdates { id providerId attendance { carerId } spendPence } }",
        Channels.for_settings(world.settings).shift_updates, updates, len(want) + 1)
    assert [g["shiftUpdates"]["id"] for g in got] == [OBJECTS[k].shift for k in [*want, want[0]]]


# ---- the ingest token reads nothing; no token reads nothing ----------------------------------------

def test_ingest_token_may_not_query(world: World) -> None:
    response = world.client.post("/graphql", json={"query": "{ packages { edges { node { id } } } }"},
                                 headers={"Authorization": f"Bearer {world.tokens['ingest-X']}"})
    assert response.status_code == 403
    assert "PKG-" not in response.text
    with world.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init",
                      "payload": {"authorization": f"Bearer {world.tokens['ingest-X']}"}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


@pytest.mark.parametrize("first", [
    {"type": "ping"},
    {"type": "connection_init", "payload": {}},
    {"type": "connection_init", "payload": {"authorization": "Bearer cw_" + "x" * 43}},
    {"id": "1", "type": "subscribe", "payload": {"query": "subscription { alerts { id } }"}},
], ids=["ping-first", "init-without-token", "init-bad-token", "subscribe-first"])
def test_websocket_without_a_valid_token_is_closed_4401(world: World, first: dict[str, Any]) -> None:
    """Whatever the client sends first, no valid token in connection_init means close 4401."""
    with world.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(first)
        if first["type"] == "ping":
            ws.send_json({"type": "connection_init", "payload": {}})
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(3):
                message = ws.receive_json()
                assert message["type"] not in ("connection_ack", "next"), message
    assert closed.value.code == 4401
