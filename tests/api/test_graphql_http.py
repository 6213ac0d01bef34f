"""GraphQL over HTTP against the example's rows: the figures a commissioner would check by hand."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

pytestmark = pytest.mark.services


def test_package_plan_and_delivery_for_the_easter_week(client: TestClient, gql: Any) -> None:
    data = gql("""
      query($id: ID!) { package(id: $id) {
        id commissionerId providerId mechanism periodStart periodEnd budgetPence contingencyPence
        plannedMinutesPerWeek
        person { personId nhsNumber }
        delivery(from: "2026-04-06T00:00:00+01:00", to: "2026-04-13T00:00:00+01:00") {
          plannedMinutes scheduledMinutes actualMinutes payableMinutes overrunMinutes unverifiedMinutes
          providerCancelledMinutes spendPence varianceMinutes }
      } }""", id="PKG-100")
    package = data["package"]
    assert package["plannedMinutesPerWeek"] == 1260
    assert package["periodStart"] == "2026-04-01" and package["periodEnd"] == "2027-03-31"
    assert package["person"] == {"personId": "P-100", "nhsNumber": "9434765919"}  # admin sees it whole
    d = package["delivery"]
    assert d["plannedMinutes"] == pytest.approx(1260)
    assert d["actualMinutes"] == pytest.approx(3395 / 60)
    assert d["payableMinutes"] == pytest.approx(3395 / 60)
    assert d["scheduledMinutes"] == pytest.approx(60)  # SH-1: 30 min x 2 carers; SH-2 cancelled
    assert d["spendPence"] == 4527  # 3395 s x 4800 p/h (bank holiday) / 3600, half-up
    assert d["varianceMinutes"] == pytest.approx(3395 / 60 - 1260)
    assert d["providerCancelledMinutes"] == 0


def test_delivery_window_is_by_shift_start(client: TestClient, gql: Any) -> None:
    data = gql("""{ package(id: "PKG-100") {
        delivery(from: "2026-04-06T08:00:01+01:00", to: "2026-04-13T00:00:00+01:00") { actualMinutes } } }""")
    assert data["package"]["delivery"]["actualMinutes"] == 0  # SH-1 started before the window


def test_rolling_7_days_and_budget_use_the_processing_clock(client: TestClient, gql: Any) -> None:
    data = gql("""{ package(id: "PKG-100") {
        rolling7Days { actualMinutes plannedMinutes spendPence }
        budget { spentPence forecastSpendPence recoverableUnderspendPence
                 contingencyPence budgetPence } } }""")
    rolling = data["package"]["rolling7Days"]
    # now = 13 April 12:00Z: the window opens 6 April 12:00Z, after SH-1 started
    assert rolling["actualMinutes"] == 0 and rolling["plannedMinutes"] == pytest.approx(1260)
    budget = data["package"]["budget"]
    assert budget["spentPence"] == 4527
    assert budget["budgetPence"] == 3_500_000 and budget["contingencyPence"] == 150_000
    assert budget["forecastSpendPence"] > budget["spentPence"]


def test_unknown_package_is_null(client: TestClient, gql: Any) -> None:
    assert gql('{ package(id: "PKG-NONE") { id } }') == {"package": None}


def test_shift_status_and_attendance(client: TestClient, gql: Any) -> None:
    data = gql("""{
      one: shift(id: "SH-1") { status startsAt actualMinutes payableMinutes spendPence
                               attendance { carerId clockInAt clockOutAt method verified } }
      two: shift(id: "SH-2") { status cancelledBy attendance { carerId } } }""")
    one = data["one"]
    assert one["status"] == "COMPLETED"
    assert one["startsAt"] == "2026-04-06T07:00:00+00:00"
    assert one["spendPence"] == 4527 and one["payableMinutes"] == pytest.approx(3395 / 60)
    assert [(a["carerId"], a["verified"]) for a in one["attendance"]] == [("CR-001", True), ("CR-002", True)]
    assert one["attendance"][0]["clockOutAt"] == "2026-04-06T07:31:40+00:00"
    assert data["two"] == {"status": "CANCELLED", "cancelledBy": "person", "attendance": []}


SHIFTS = """query($f: ShiftFilter, $first: Int, $after: String) {
  shifts(filter: $f, first: $first, after: $after) {
    edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }"""


def test_shifts_page_with_first_and_after(client: TestClient, gql: Any) -> None:
    first = gql(SHIFTS, f={"packageId": "PKG-100"}, first=1)
    page = first["shifts"]
    assert [e["node"]["id"] for e in page["edges"]] == ["SH-1"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["endCursor"] == page["edges"][0]["cursor"]

    second = gql(SHIFTS, f={"packageId": "PKG-100"}, first=1, after=page["pageInfo"]["endCursor"])
    assert [e["node"]["id"] for e in second["shifts"]["edges"]] == ["SH-2"]
    assert second["shifts"]["pageInfo"]["hasNextPage"] is False


def test_shifts_filters(client: TestClient, gql: Any) -> None:
    cancelled = gql(SHIFTS, f={"status": "CANCELLED"})
    assert [e["node"]["id"] for e in cancelled["shifts"]["edges"]] == ["SH-2"]
    completed = gql(SHIFTS, f={"status": "COMPLETED", "providerId": "PRV-ACORN"})
    assert [e["node"]["id"] for e in completed["shifts"]["edges"]] == ["SH-1"]
    window = gql(SHIFTS, f={"from": "2026-04-07T00:00:00+01:00", "to": "2026-04-08T00:00:00+01:00"})
    assert [e["node"]["id"] for e in window["shifts"]["edges"]] == ["SH-2"]
    other = gql(SHIFTS, f={"providerId": "PRV-OTHER"})
    assert other["shifts"] == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}


def test_first_over_500_is_refused_clearly(client: TestClient, gql: Any) -> None:
    body = client.post("/graphql", json={"query": "{ shifts(first: 501) { edges { cursor } } }"}).json()
    assert body["data"] is None
    assert "at most 500" in body["errors"][0]["message"]
    ok = gql("{ shifts(first: 500) { edges { cursor } } }")
    assert len(ok["shifts"]["edges"]) == 2


def test_bad_cursor_is_refused(client: TestClient) -> None:
    query = '{ shifts(after: "nonsense!") { edges { cursor } } }'
    body = client.post("/graphql", json={"query": query}).json()
    assert "cursor" in body["errors"][0]["message"]


def test_packages_connection(client: TestClient, gql: Any) -> None:
    data = gql("""{ packages(filter: {commissionerId: "LA-WIRRAL"}) {
        edges { node { id rolling7Days { plannedMinutes } } } pageInfo { hasNextPage } } }""")
    assert [e["node"]["id"] for e in data["packages"]["edges"]] == ["PKG-100"]
    none = gql('{ packages(filter: {providerId: "PRV-OTHER"}) { edges { cursor } } }')
    assert none["packages"]["edges"] == []


def test_get_request_and_graphiql(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": '{ shift(id: "SH-1") { id } }'})
    assert response.json() == {"data": {"shift": {"id": "SH-1"}}}
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()


def test_query_over_graphql_transport_ws(client: TestClient, api_settings: Any, bearer: Any) -> None:
    token = bearer(api_settings.database_url, "admin", None)["Authorization"]
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"authorization": token}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"id": "1", "type": "subscribe",
                      "payload": {"query": '{ shift(id: "SH-1") { status } }'}})
        assert ws.receive_json() == {"id": "1", "type": "next",
                                     "payload": {"data": {"shift": {"status": "COMPLETED"}}}}
        assert ws.receive_json() == {"id": "1", "type": "complete"}


def test_shift_status_uses_commissioner_then_package_thresholds(client: TestClient, gql: Any,
                                                                api_settings: Any) -> None:
    import psycopg

    query = '{ shift(id: "SH-3") { status } }'
    with psycopg.connect(api_settings.database_url, autocommit=True) as conn:
        # Nobody has arrived 20 minutes after the start (NOW is 12:00 UTC).
        conn.execute("INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at, service_type,"
                     " carers_required, carer_ids, required_competencies, scheduled_at) VALUES ('SH-3',"
                     " 'PKG-100', 'PRV-ACORN', '2026-04-13T11:40:00Z', '2026-04-13T12:40:00Z', 'personal_care',"
                     " 1, '{CR-001}', '{}', '2026-04-12T09:00:00Z')")
        assert gql(query)["shift"]["status"] == "LATE"  # the default: late after 15 minutes
        conn.execute("INSERT INTO commissioner_thresholds (commissioner_id, thresholds) VALUES"
                     " ('LA-WIRRAL', '{\"late_start_minutes\": 30}')")
        assert gql(query)["shift"]["status"] == "SCHEDULED"  # the commissioner allows 30
        conn.execute("UPDATE packages SET thresholds = '{\"late_start_minutes\": 10}' WHERE package_id = 'PKG-100'")
        assert gql(query)["shift"]["status"] == "LATE"  # the package's own 10 wins
        conn.execute("UPDATE packages SET thresholds = '{\"late_start_minutes\": \"soon\"}'"
                     " WHERE package_id = 'PKG-100'")
        assert gql(query)["shift"]["status"] == "SCHEDULED"  # a malformed override is ignored, not fatal
