"""Pages compute their figures once per page (graphql/resolvers): what the operation does not select is not
needed, and a filter on a figure still works when the figure is not selected."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from starlette.testclient import TestClient
from tests.api.conftest import Gql
from tests.unit.test_query_cost import PORTAL_PACKAGES

from carewatch.alerts.bus import Channels
from carewatch.settings import Settings

pytestmark = pytest.mark.services


def test_a_page_and_its_package_agree_and_unselected_figures_are_left_out(gql: Gql) -> None:
    fields = "id rolling7Days { actualMinutes spendPence } budget { spentPence forecastSpendPence }"
    page = gql(f"{{ packages(first: 5) {{ edges {{ node {{ {fields} }} }} }} }}")["packages"]["edges"]
    one = gql(f'{{ package(id: "PKG-100") {{ {fields} }} }}')["package"]
    assert [e["node"] for e in page] == [one]
    # SH-1's 3,395 payable seconds at the bank holiday rate: 3395 x 4800 / 3600 = 4,526.67 -> 4,527 pence in
    # the budget period; it started at 07:00 on 6 April, before the 7 days up to NOW (13 April 12:00) began.
    assert one["budget"]["spentPence"] == 4527 and one["rolling7Days"] == {"actualMinutes": 0.0, "spendPence": 0}
    assert gql("{ packages(first: 5) { edges { node { id budget { spentPence } } } } }")["packages"]["edges"] == [
        {"node": {"id": "PKG-100", "budget": {"spentPence": 4527}}}]
    shifts = gql("{ shifts(first: 5) { edges { node { id status spendPence attendance { carerId } } } } }")
    assert [(e["node"]["id"], e["node"]["status"], e["node"]["spendPence"], len(e["node"]["attendance"]))
            for e in shifts["shifts"]["edges"]] == [("SH-1", "COMPLETED", 4527, 2), ("SH-2", "CANCELLED", 0, 0)]


def test_shift_updates_filtered_by_a_status_it_does_not_select(client: TestClient, api_settings: Settings,
                                                                bearer: object) -> None:
    token = client.headers["Authorization"]
    channel = Channels.for_settings(api_settings).shift_updates
    publisher = redis.Redis.from_url(api_settings.redis_url)
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"authorization": token}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe",
                      "payload": {"query": "subscription { shiftUpdates(filter: {status: CANCELLED}) { id } }"}})
        deadline = time.monotonic() + 5
        while publisher.pubsub_numsub(channel)[0][1] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the subscription reaches the hub just after the subscribe message
        publisher.publish(channel, '{"shift_ids": ["SH-1", "SH-2"]}')
        got: list[object] = []  # a daemon thread: fail, rather than wait for ever, when nothing comes
        reader = threading.Thread(target=lambda: got.append(ws.receive_json()), daemon=True)
        reader.start()
        reader.join(10)
        assert got, "no shift update in 10 s"
        assert got[0] == {"id": "1", "type": "next", "payload": {"data": {"shiftUpdates": {"id": "SH-2"}}}}


def test_a_subscribe_over_the_cost_limit_gets_an_error_not_a_stream(client: TestClient) -> None:
    token = client.headers["Authorization"]
    costly = "query { " + " ".join(f"a{i}: {PORTAL_PACKAGES}" for i in range(15)) + " }"
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"authorization": token}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "7", "type": "subscribe", "payload": {"query": costly}})
        message = ws.receive_json()
        assert message["type"] == "error" and message["id"] == "7"
        assert message["payload"][0]["extensions"] == {"code": "QUERY_COST_OVER_LIMIT", "cost": 67_515,
                                                       "limit": 25_000}
        ws.send_json({"id": "8", "type": "subscribe", "payload": {"query": "{ me { role } }"}})
        assert ws.receive_json()["payload"] == {"data": {"me": {"role": "admin"}}}
