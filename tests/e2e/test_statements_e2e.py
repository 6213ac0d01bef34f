"""Issue 10, statements and effective pay, end to end: events in through Kafka to a real worker, figures
out through GraphQL and /exports/statements.csv from a real API process.

One commissioner (LA-S), two providers. The week of Monday 13 April 2026 (BST, no bank holiday):
- PKG-A1 (PRV-A): plan 420 min/week at 2,400p/h. SH-A1-1 attended 60 min; SH-A1-2 30 min by a
  manual clock-in (unverified); SH-A1-0 on Sunday 12 April, 60 min, outside the window.
- PKG-A2 (PRV-A): plan 420. SH-A2-1 attended 70 min (60 payable, 10 overrun); SH-A2-2 not attended.
- PKG-B1 (PRV-B): plan 840. SH-B1-1 attended 120 min.
- CR-A1 (PRV-A, 1,300p/h) logs 60 min of travel for PKG-A1, 45 for PKG-A2, 15 of admin for none.
- INV-A1 bills PKG-A1's two visits exactly (3,600p); INV-A2 bills SH-A2-1 and the unattended SH-A2-2.
Every expected figure below is worked out by hand from DOMAIN.md.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from fractions import Fraction
from typing import Any

import httpx
import pytest

from carewatch.services import Broker
from procs import api_server, create_token, graphql, produce, scalar, scheduler, wait_for, worker

pytestmark = pytest.mark.services

WEEK = {"from": "2026-04-13", "to": "2026-04-20"}
PLAN = {"service_type": "personal_care", "minutes_per_week": 420}
RATES = [{"service_type": "personal_care", "band": "day", "pence_per_hour": 2400}]
NOW = "2026-04-20T12:00:00+00:00"  # Monday 20 April, 13:00 BST


def _event(event_type: str, at: str, **payload: Any) -> str:
    return json.dumps({"event_id": f"E-{uuid.uuid4().hex[:12]}", "type": event_type, "occurred_at": at, **payload})


def _package(pid: str, provider: str, minutes: int, budget: int, contingency: int) -> str:
    return _event("package.approved", "2026-03-20T09:00:00Z", package_id=pid, commissioner_id="LA-S",
                  provider_id=provider, person={"person_id": f"P-{pid}", "nhs_number": "9434765919"},
                  period_start="2026-04-01", period_end="2027-03-31", budget_pence=budget,
                  contingency_pence=contingency, plan=[{**PLAN, "minutes_per_week": minutes}], rates=RATES)


def _visit(sid: str, pid: str, provider: str, carer: str, day: int, hours: int, stay_minutes: int | None,
           method: str = "gps") -> list[str]:
    """A shift from 09:00Z (10:00 BST) on `day` April for `hours`, attended for `stay_minutes` (None: not)."""
    ids = {"shift_id": sid, "package_id": pid, "provider_id": provider}
    lines = [_event("shift.scheduled", "2026-04-01T08:00:00Z", **ids, starts_at=f"2026-04-{day:02d}T09:00:00Z",
                    ends_at=f"2026-04-{day:02d}T{9 + hours:02d}:00:00Z", service_type="personal_care",
                    carer_ids=[carer])]
    if stay_minutes is not None:
        out_h, out_m = divmod(9 * 60 + stay_minutes, 60)
        lines += [_event("visit.clock_in", f"2026-04-{day:02d}T09:00:00Z", **ids, carer_id=carer, method=method),
                  _event("visit.clock_out", f"2026-04-{day:02d}T{out_h:02d}:{out_m:02d}:00Z", **ids, carer_id=carer,
                         method="gps")]
    return lines


def _feed() -> list[str]:
    setup = [
        _event("commissioner.registered", "2026-03-01T09:00:00Z", commissioner_id="LA-S", name="Shire Council",
               timezone="Europe/London"),
        _event("provider.registered", "2026-03-01T09:00:00Z", provider_id="PRV-A", name="Acorn"),
        _event("provider.registered", "2026-03-01T09:00:00Z", provider_id="PRV-B", name="Beech"),
        _event("carer.registered", "2026-03-01T09:00:00Z", carer_id="CR-A1", provider_id="PRV-A",
               pay_pence_per_hour=1300),
        _event("carer.registered", "2026-03-01T09:00:00Z", carer_id="CR-B1", provider_id="PRV-B",
               pay_pence_per_hour=1300),
        _package("PKG-A1", "PRV-A", 420, 1_000_000, 50_000),
        _package("PKG-A2", "PRV-A", 420, 1_000_000, 50_000),
        _package("PKG-B1", "PRV-B", 840, 2_000_000, 100_000),
    ]
    # Activities first: the week is judged the same whichever arrives first.
    activities = [
        _event("activity.logged", "2026-04-13T12:00:00Z", carer_id="CR-A1", provider_id="PRV-A",
               package_id="PKG-A1", kind="travel", minutes=60),
        _event("activity.logged", "2026-04-15T12:00:00Z", carer_id="CR-A1", provider_id="PRV-A",
               package_id="PKG-A2", kind="travel", minutes=45),
        _event("activity.logged", "2026-04-14T16:00:00Z", carer_id="CR-A1", provider_id="PRV-A",
               kind="admin", minutes=15),
    ]
    visits = (_visit("SH-A1-0", "PKG-A1", "PRV-A", "CR-A1", 12, 1, 60)
              + _visit("SH-A1-1", "PKG-A1", "PRV-A", "CR-A1", 13, 1, 60)
              + _visit("SH-A1-2", "PKG-A1", "PRV-A", "CR-A1", 14, 1, 30, method="manual")
              + _visit("SH-A2-1", "PKG-A2", "PRV-A", "CR-A1", 15, 1, 70)
              + _visit("SH-A2-2", "PKG-A2", "PRV-A", "CR-A1", 17, 1, None)
              + _visit("SH-B1-1", "PKG-B1", "PRV-B", "CR-B1", 16, 2, 120))
    invoices = [
        _event("invoice.submitted", "2026-04-20T08:00:00Z", invoice_id="INV-A1", package_id="PKG-A1",
               provider_id="PRV-A", period_start="2026-04-13", period_end="2026-04-19", total_pence=3600,
               lines=[{"shift_id": "SH-A1-1", "minutes": 60, "amount_pence": 2400},
                      {"shift_id": "SH-A1-2", "minutes": 30, "amount_pence": 1200}]),
        _event("invoice.submitted", "2026-04-20T08:00:00Z", invoice_id="INV-A2", package_id="PKG-A2",
               provider_id="PRV-A", period_start="2026-04-13", period_end="2026-04-19", total_pence=5000,
               lines=[{"shift_id": "SH-A2-1", "minutes": 60, "amount_pence": 2400},
                      {"shift_id": "SH-A2-2", "minutes": 60, "amount_pence": 2600}]),
    ]
    return setup + activities + visits + invoices


FIELDS = ("scope id from to packages orderedMinutes orderedPence deliveredMinutes deliveredPence unverifiedMinutes "
          "invoicedPence matchedPence disputedInvoices varianceMinutes recoverableUnderspendPence directMinutes "
          "nonDirectMinutes nonDirectCareShare")
ONE = f"""query($scope: StatementScope!, $id: ID!, $from: Date!, $to: Date!) {{
  statement(scope: $scope, id: $id, from: $from, to: $to) {{ {FIELDS} }} }}"""
LEAGUE = f"""query($scope: StatementScope!, $from: Date!, $to: Date!, $first: Int, $after: String) {{
  statements(scope: $scope, from: $from, to: $to, first: $first, after: $after) {{
    edges {{ cursor node {{ {FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
PAY = """{ alerts(filter: {kinds: ["PAY_BELOW_MINIMUM"]}) { edges { node { kind status carerId message } } } }"""

# Remaining weeks of every package (period to 31 March 2027) from Monday 20 April 2026, 13:00 BST:
# 346 local days less 13 hours = 8,291 hours.
WEEKS_LEFT = Fraction(8291, 168)


def _recoverable(budget: int, contingency: int, plan_minutes: int, spent_payable_minutes: int) -> int:
    weekly = Fraction(plan_minutes * 2400, 60)
    forecast = Fraction(spent_payable_minutes * 2400, 60) + weekly * WEEKS_LEFT
    return round(max(Fraction(0), budget - contingency - forecast))


def _league(base: str, token: str, scope: str) -> list[dict[str, Any]]:
    data = graphql(base, token, LEAGUE, scope=scope, **WEEK)
    return [e["node"] for e in data["statements"]["edges"]]


def _csv(base: str, token: str, **params: str) -> httpx.Response:
    return httpx.get(f"{base}/exports/statements.csv", params=params,
                     headers={"Authorization": f"Bearer {token}"}, timeout=10)


async def test_statements_and_effective_pay_through_kafka_graphql_and_csv(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    lines = _feed()
    admin = create_token(fresh_database_url, "admin")
    council = create_token(fresh_database_url, "commissioner", "LA-S")
    beech = create_token(fresh_database_url, "provider", "PRV-B")
    ingest = create_token(fresh_database_url, "ingest", "PRV-A")
    clock = {"CAREWATCH_CLOCK": f"fixed:{NOW}"}
    # PAY_BELOW_MINIMUM is the scheduler's, once a carer's week has settled: at once here (the clock is fixed).
    with worker(broker, fresh_database_url, topic, **clock) as process, \
            scheduler(fresh_database_url, redis_url, CAREWATCH_SETTLE_SECONDS="0", **clock), \
            api_server(broker, fresh_database_url, redis_url, topic, **clock) as base:
        await produce(broker, topic, lines)
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM events") == len(lines)
                 and scalar(c, "SELECT count(*) FROM held_events") == 0, process, timeout=40)

        a1 = graphql(base, admin, ONE, scope="PACKAGE", id="PKG-A1", **WEEK)["statement"]
        # Ordered: 420 min/week for 7 days, at 2,400p/h = 16,800p. Delivered: 60 + 30 minutes (SH-A1-0
        # starts on the 12th, outside), 3,600p; the manual 30 unverified. Travel 60 of 90 + 60 minutes.
        assert (a1["orderedMinutes"], a1["orderedPence"]) == (420, 16_800)
        assert (a1["deliveredMinutes"], a1["deliveredPence"], a1["unverifiedMinutes"]) == (90, 3600, 30)
        assert a1["varianceMinutes"] == -330
        assert (a1["invoicedPence"], a1["matchedPence"], a1["disputedInvoices"]) == (3600, 3600, 0)
        assert a1["nonDirectCareShare"] == pytest.approx(60 / 150)
        # Spent in the period: SH-A1-0, -1 and -2, 150 payable minutes (6,000p).
        assert a1["recoverableUnderspendPence"] == _recoverable(1_000_000, 50_000, 420, 150) == 114_900

        a2 = graphql(base, admin, ONE, scope="PACKAGE", id="PKG-A2", **WEEK)["statement"]
        # Paid to plan: 60 of the 70 minutes attended; direct care counts all 70. INV-A2's second line
        # names a visit nobody attended: disputed, matched min(5,000, 2,400, 16,800 x 1.1) = 2,400p.
        assert (a2["deliveredMinutes"], a2["deliveredPence"], a2["directMinutes"]) == (60, 2400, 70)
        assert (a2["invoicedPence"], a2["matchedPence"], a2["disputedInvoices"]) == (5000, 2400, 1)
        assert a2["nonDirectCareShare"] == pytest.approx(45 / 115)

        # The provider: sums over its packages, and its carer's 15 minutes of admin logged against none:
        # (60 + 45 + 15) / (90 + 70 + 60 + 45 + 15) = 120 / 280.
        acorn = graphql(base, admin, ONE, scope="PROVIDER", id="PRV-A", **WEEK)["statement"]
        assert (acorn["packages"], acorn["orderedMinutes"], acorn["orderedPence"]) == (2, 840, 33_600)
        assert (acorn["deliveredMinutes"], acorn["deliveredPence"], acorn["varianceMinutes"]) == (150, 6000, -690)
        assert (acorn["invoicedPence"], acorn["matchedPence"], acorn["disputedInvoices"]) == (8600, 6000, 1)
        assert acorn["nonDirectCareShare"] == pytest.approx(120 / 280)

        la = graphql(base, council, ONE, scope="COMMISSIONER", id="LA-S", **WEEK)["statement"]
        assert (la["packages"], la["orderedMinutes"], la["orderedPence"]) == (3, 1680, 67_200)
        assert (la["deliveredMinutes"], la["deliveredPence"], la["unverifiedMinutes"]) == (270, 10_800, 30)
        assert la["varianceMinutes"] == -1410
        # Its packages' figures only: (60 + 45) / (90 + 70 + 120 + 60 + 45).
        assert la["nonDirectCareShare"] == pytest.approx(105 / 385)
        assert la["recoverableUnderspendPence"] == (_recoverable(1_000_000, 50_000, 420, 150)
                                                    + _recoverable(1_000_000, 50_000, 420, 60)
                                                    + _recoverable(2_000_000, 100_000, 840, 120)) == 470_400

        # League: PRV-B delivered 120 of 840 (-85.7%), PRV-A 150 of 840 (-82.1%).
        providers = _league(base, council, "PROVIDER")
        assert [s["id"] for s in providers] == ["PRV-B", "PRV-A"]
        # Narrowed to the commissioner's packages, the admin logged against none is not its to count.
        assert providers[1]["nonDirectCareShare"] == pytest.approx(105 / 265)
        assert providers[0]["nonDirectCareShare"] is None  # CR-B1 logged no time
        packages = _league(base, admin, "PACKAGE")
        # PKG-A2 -360/420 and PKG-B1 -720/840 tie at -6/7 (then by id), PKG-A1 -330/420.
        assert [s["id"] for s in packages] == ["PKG-A2", "PKG-B1", "PKG-A1"]
        page = graphql(base, admin, LEAGUE, scope="PACKAGE", first=1, **WEEK)["statements"]
        rest = graphql(base, admin, LEAGUE, scope="PACKAGE", after=page["pageInfo"]["endCursor"],
                       **WEEK)["statements"]
        assert page["pageInfo"]["hasNextPage"] and [e["node"]["id"] for e in rest["edges"]] == ["PKG-B1", "PKG-A1"]

        # Scope: another provider's statement does not exist for PRV-B; its league holds its own only.
        assert graphql(base, beech, ONE, scope="PROVIDER", id="PRV-A", **WEEK)["statement"] is None
        assert [s["id"] for s in _league(base, beech, "PACKAGE")] == ["PKG-B1"]

        # The CSV: same figures, same order, the scope in any case.
        response = _csv(base, council, scope="Provider", **WEEK)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [(r["scope"], r["id"]) for r in rows] == [("PROVIDER", "PRV-B"), ("PROVIDER", "PRV-A")]
        assert (rows[1]["ordered_minutes"], rows[1]["delivered_pence"], rows[1]["variance_minutes"]) == (
            "840", "6000", "-690")
        assert (rows[1]["invoiced_pence"], rows[1]["matched_pence"], rows[1]["disputed_invoices"]) == (
            "8600", "6000", "1")
        assert rows[1]["non_direct_care_share"] == "0.396226"  # 105 / 265
        assert rows[0]["non_direct_care_share"] == ""
        one = list(csv.DictReader(io.StringIO(_csv(base, admin, scope="package", id="PKG-A1", **WEEK).text)))
        assert [(r["id"], r["unverified_minutes"], r["recoverable_underspend_pence"]) for r in one] == [
            ("PKG-A1", "30", "114900")]
        assert list(csv.DictReader(io.StringIO(_csv(base, beech, scope="provider", id="PRV-A", **WEEK).text))) == []
        bad = _csv(base, admin, scope="region", **WEEK)
        assert bad.status_code == 400 and "scope" in bad.json()["error"]
        assert "from" in _csv(base, admin, scope="package", to="2026-04-20").json()["error"]
        assert _csv(base, admin, scope="package", **{"from": "2026-04-20", "to": "2026-04-13"}).status_code == 400
        assert httpx.get(f"{base}/exports/statements.csv", params={"scope": "package", **WEEK}).status_code == 401
        assert _csv(base, ingest, scope="package", **WEEK).status_code == 403

        # Effective pay, ISO week 2026-W16: CR-A1 attended 60 + 30 + 70 = 160 minutes and logged 120
        # unpaid: 1,300 x 160 / 280 = 742.86p an hour, under the 1,271p in force. CR-B1: 1,300p (no travel).
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM settling") == 0, process, timeout=20)
        alerts = [e["node"] for e in graphql(base, admin, PAY)["alerts"]["edges"]]
        assert [(a["carerId"], a["status"]) for a in alerts] == [("CR-A1", "open")]
        assert "2026-W16" in alerts[0]["message"] and "743p/h" in alerts[0]["message"]
        assert "1271p/h" in alerts[0]["message"]
