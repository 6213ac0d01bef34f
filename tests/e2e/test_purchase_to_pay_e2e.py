"""Issue 10, purchase to pay, end to end: events through Kafka, the real worker and API processes, figures
and alerts out through GraphQL over HTTP.

An invoice is matched when it arrives and re-matched when the delivery behind it changes (a late
clock-out, a correction); the provider's corrected version replaces it and INVOICE_DISPUTED
auto-resolves; an older version arriving late never replaces it. A package's BUDGET_AT_RISK follows
its plan: warning, then critical (severity changed in place, history kept), then resolved. A carer's
double booking reaches the commissioners of both packages, and no other provider. Every figure below
is worked out by hand from DOMAIN.md.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import psycopg
import pytest
from websockets.asyncio.client import connect

from carewatch.services import Broker
from procs import api_server, create_token, graphql, produce, scalar, wait_for, worker

pytestmark = pytest.mark.services

NOW = "2026-04-20T12:00:00+00:00"  # Monday 20 April 2026, 13:00 in London (BST)
US, THEM = "LA-P2P", "LA-OTHER"
PROVIDER, RIVAL = "PRV-P2P", "PRV-RIVAL"
PACKAGE, ELSEWHERE, BUDGETED = "PKG-INV", "PKG-ELSE", "PKG-BUD"
RATE = 1800  # pence per hour, the day rate (and, by fallback, every band's)
PLAN_MINUTES = 420  # a week, one carer
PERSON = {"person_id": "P-P2P", "nhs_number": "9434765919"}

INVOICE = """
query($id: ID!) {
  invoice(id: $id) {
    id packageId status invoicedPence orderedPence deliveredPence matchedPence
    lines { shiftId finding invoicedMinutes payableMinutes }
    history { invoicedPence submittedAt }
  }
}"""
LISTS = """
{
  disputed: invoices(filter: {status: "DISPUTED"}) { edges { node { id } } }
  matched: invoices(filter: {status: "MATCHED"}) { edges { node { id } } }
  package(id: "PKG-INV") { invoices { edges { node { id status } } } }
}"""
ALERTS = """
query($kinds: [String!]) {
  alerts(filter: {kinds: $kinds}) { edges { node {
    kind severity status subjectType subjectId packageId providerId commissionerIds
    history { status severity note }
  } } }
}"""
ATTENDANCE = """
{ shift(id: "SH-C") { attendance { carerId method verified clockInAt clockOutAt
                                   correction { reasonCode correctedBy correctedAt } } } }"""


def _event(event_type: str, at: str, **payload: Any) -> str:
    return json.dumps({"event_id": f"p2p-{uuid.uuid4().hex[:12]}", "type": event_type, "occurred_at": at,
                       **payload})


def _package(package_id: str, commissioner: str, at: str, *, start: str, end: str, minutes: int,
             budget: int, contingency: int) -> str:
    return _event("package.approved", at, package_id=package_id, commissioner_id=commissioner,
                  provider_id=PROVIDER, mechanism="commissioned", person=PERSON, period_start=start,
                  period_end=end, budget_pence=budget, contingency_pence=contingency,
                  plan=[{"service_type": "personal_care", "minutes_per_week": minutes, "carers": 1}],
                  rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": RATE}])


def _shift(shift_id: str, package_id: str, starts: str, ends: str, carer: str) -> str:
    return _event("shift.scheduled", "2026-04-10T09:00:00Z", shift_id=shift_id, package_id=package_id,
                  provider_id=PROVIDER, starts_at=starts, ends_at=ends, service_type="personal_care",
                  carers_required=1, carer_ids=[carer])


def _clock(direction: str, shift_id: str, package_id: str, carer: str, at: str) -> str:
    return _event(f"visit.clock_{direction}", at, shift_id=shift_id, package_id=package_id, provider_id=PROVIDER,
                  carer_id=carer, method="nfc")


def _invoice(at: str, lines: list[tuple[str, int]]) -> str:
    """INV-1 for the week of 13 April, each line (shift, minutes) billed at the day rate."""
    billed = [{"shift_id": s, "service_type": "personal_care", "minutes": m, "amount_pence": m * RATE // 60}
              for s, m in lines]
    return _event("invoice.submitted", at, invoice_id="INV-1", package_id=PACKAGE, provider_id=PROVIDER,
                  period_start="2026-04-13", period_end="2026-04-19", lines=billed,
                  total_pence=sum(line["amount_pence"] for line in billed))


def _setup() -> list[str]:
    day = "2026-04-01T08:00:00Z"
    return [
        _event("commissioner.registered", day, commissioner_id=US, name="P2P Council", kind="local_authority"),
        _event("commissioner.registered", day, commissioner_id=THEM, name="Other ICB", kind="icb"),
        _event("provider.registered", day, provider_id=PROVIDER, name="P2P Care"),
        _event("provider.registered", day, provider_id=RIVAL, name="Rival Care"),
        *[_event("carer.registered", day, carer_id=c, provider_id=PROVIDER, competencies=[],
                 pay_pence_per_hour=1400) for c in ("CR-1", "CR-2")],
        _package(PACKAGE, US, day, start="2026-04-01", end="2027-03-31", minutes=PLAN_MINUTES,
                 budget=10_000_000, contingency=100_000),
        _package(ELSEWHERE, THEM, day, start="2026-04-01", end="2027-03-31", minutes=PLAN_MINUTES,
                 budget=10_000_000, contingency=100_000),
        # 400 minutes a week at 1800p/h: 12000p a week, near its budget (figures at the end of the test).
        _package(BUDGETED, US, "2026-04-02T08:00:00Z", start="2026-04-01", end="2026-06-30", minutes=400,
                 budget=130_000, contingency=10_000),
        # The invoice's week (13 to 19 April, BST): three one-hour visits at 09:00 local, all day band.
        _shift("SH-A", PACKAGE, "2026-04-14T08:00:00Z", "2026-04-14T09:00:00Z", "CR-1"),
        _shift("SH-B", PACKAGE, "2026-04-15T08:00:00Z", "2026-04-15T09:00:00Z", "CR-1"),
        _shift("SH-C", PACKAGE, "2026-04-16T08:00:00Z", "2026-04-16T09:00:00Z", "CR-1"),
        # The next Monday, CR-2 is on two visits at once, for two commissioners (both still running at NOW,
        # so that no one is a lone worker overdue).
        _shift("SH-D1", PACKAGE, "2026-04-20T08:00:00Z", "2026-04-20T12:00:00Z", "CR-2"),
        _shift("SH-D2", ELSEWHERE, "2026-04-20T08:00:00Z", "2026-04-20T12:00:00Z", "CR-2"),
    ]


@asynccontextmanager
async def _subscribed(base: str, token: str) -> AsyncIterator[list[dict[str, Any]]]:
    """An `alerts` subscription over graphql-transport-ws; the list fills as alerts arrive."""
    received: list[dict[str, Any]] = []
    async with connect(base.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": "subscription { alerts { kind subjectId status } }"}}))

        async def read() -> None:
            async for raw in ws:
                message = json.loads(raw)
                assert message["type"] == "next" and not message["payload"].get("errors"), message
                received.append(message["payload"]["data"]["alerts"])

        task = asyncio.get_running_loop().create_task(read())
        await asyncio.sleep(0.5)  # subscribed before anything is produced
        try:
            yield received
        finally:
            task.cancel()


async def _until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _alerts(base: str, token: str, *kinds: str) -> list[dict[str, Any]]:
    return [e["node"] for e in graphql(base, token, ALERTS, kinds=list(kinds))["alerts"]["edges"]]


def _pence(value: Fraction) -> int:
    """Half up to whole pence (DOMAIN.md "Spend")."""
    return int(value + Fraction(1, 2))


async def test_invoices_budgets_corrections_and_who_sees_which_alerts(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    admin = create_token(fresh_database_url, "admin")
    ours = create_token(fresh_database_url, "commissioner", US)
    theirs = create_token(fresh_database_url, "safeguarding", THEM)
    provider = create_token(fresh_database_url, "provider", PROVIDER)
    rival = create_token(fresh_database_url, "provider", RIVAL)
    clock = {"CAREWATCH_CLOCK": f"fixed:{NOW}"}
    ordered = PLAN_MINUTES * RATE // 60  # 12600p: a whole week of plan, 7 of 7 days

    def settled(conn: psycopg.Connection[Any], sql: str, want: Any) -> bool:
        return bool(scalar(conn, sql) == want)

    with worker(broker, fresh_database_url, topic, **clock) as process, \
            api_server(broker, fresh_database_url, redis_url, topic, **clock) as base:
        async with _subscribed(base, theirs) as theirs_live, _subscribed(base, rival) as rival_live:
            # 1. SH-A attended in full, SH-B clocked in but not (yet) out, SH-C not at all; the invoice
            #    bills an hour each (3 x 1800p). Delivered: SH-A's 1800p only (an open attendance pays nothing).
            await produce(broker, topic, [
                *_setup(),
                _clock("in", "SH-A", PACKAGE, "CR-1", "2026-04-14T08:00:00Z"),
                _clock("out", "SH-A", PACKAGE, "CR-1", "2026-04-14T09:00:00Z"),
                _clock("in", "SH-B", PACKAGE, "CR-1", "2026-04-15T08:00:00Z"),
                _clock("in", "SH-D1", PACKAGE, "CR-2", "2026-04-20T08:00:00Z"),
                _clock("in", "SH-D2", ELSEWHERE, "CR-2", "2026-04-20T08:10:00Z"),
                _invoice("2026-04-19T20:00:00Z", [("SH-A", 60), ("SH-B", 60), ("SH-C", 60)]),
            ])
            wait_for(fresh_database_url, lambda c: settled(
                c, "SELECT status FROM invoices WHERE invoice_id = 'INV-1'", "DISPUTED") and settled(
                c, "SELECT count(*) FROM alerts WHERE kind = 'DOUBLE_BOOKED_CARER'", 1), process)
            # Live, the other commissioner's lead hears of the double booking (and nothing of ours); the rival
            # provider, subscribed as long, hears nothing at all.
            await _until(lambda: any(a["kind"] == "DOUBLE_BOOKED_CARER" for a in theirs_live), "the subscription")
            await asyncio.sleep(1.0)
            assert {(a["kind"], a["subjectId"]) for a in theirs_live} == {("DOUBLE_BOOKED_CARER", "CR-2")}
            assert rival_live == []
        first = graphql(base, admin, INVOICE, id="INV-1")["invoice"]
        # Tolerance max(100p, 1% of 1800p) = 100p: 5400p > 1900p disputes it; SH-C has no attendance
        # (unproven); SH-B bills 60 minutes against 0 payable (overstated).
        assert (first["status"], first["invoicedPence"], first["deliveredPence"]) == ("DISPUTED", 5400, 1800)
        assert first["orderedPence"] == ordered
        assert first["matchedPence"] == min(5400, 1800, _pence(Fraction(ordered) * Fraction(11, 10)))
        assert [(line["shiftId"], line["finding"]) for line in first["lines"]] == [
            ("SH-A", "OK"), ("SH-B", "OVERSTATED"), ("SH-C", "UNPROVEN")]
        [disputed] = _alerts(base, ours, "INVOICE_DISPUTED")
        assert (disputed["status"], disputed["subjectType"], disputed["subjectId"]) == ("open", "invoice", "INV-1")
        assert (disputed["packageId"], disputed["providerId"]) == (PACKAGE, PROVIDER)
        lists = graphql(base, ours, LISTS)
        assert [e["node"]["id"] for e in lists["disputed"]["edges"]] == ["INV-1"]
        assert lists["matched"]["edges"] == []
        assert lists["package"]["invoices"]["edges"] == [{"node": {"id": "INV-1", "status": "DISPUTED"}}]
        # Out of scope, the invoice and its alert do not exist.
        assert graphql(base, rival, INVOICE, id="INV-1")["invoice"] is None
        assert graphql(base, theirs, INVOICE, id="INV-1")["invoice"] is None
        assert _alerts(base, rival, "INVOICE_DISPUTED") == [] and _alerts(base, theirs, "INVOICE_DISPUTED") == []
        assert graphql(base, rival, LISTS)["disputed"]["edges"] == []

        # The carer's double booking reaches both commissioners and their own provider, not the rival.
        for token in (admin, ours, theirs, provider):
            [booked] = _alerts(base, token, "DOUBLE_BOOKED_CARER")
            assert (booked["subjectType"], booked["subjectId"]) == ("carer", "CR-2")
            assert booked["commissionerIds"] == sorted([US, THEM])
        assert _alerts(base, rival, "DOUBLE_BOOKED_CARER") == []

        # 2. The delivery changes under the invoice: SH-B's clock-out arrives (45 minutes, 1350p) and SH-C
        #    is corrected to 30 minutes (900p, unverified). Delivered 4050p; still disputed (5400p >
        #    4150p), both now overstated rather than unproven; the open alert stays the one alert.
        await produce(broker, topic, [
            _clock("out", "SH-B", PACKAGE, "CR-1", "2026-04-15T08:45:00Z"),
            _event("visit.corrected", "2026-04-17T10:30:00Z", shift_id="SH-C", package_id=PACKAGE,
                   provider_id=PROVIDER, carer_id="CR-1", clock_in_at="2026-04-16T08:00:00Z",
                   clock_out_at="2026-04-16T08:30:00Z", reason_code="device_failure", corrected_by="coord-7"),
        ])
        wait_for(fresh_database_url, lambda c: settled(
            c, "SELECT delivered_pence FROM invoices WHERE invoice_id = 'INV-1'", 1800 + 1350 + 900), process)
        second = graphql(base, admin, INVOICE, id="INV-1")["invoice"]
        assert (second["status"], second["deliveredPence"], second["matchedPence"]) == ("DISPUTED", 4050, 4050)
        assert [line["finding"] for line in second["lines"]] == ["OK", "OVERSTATED", "OVERSTATED"]
        assert [a["status"] for a in _alerts(base, admin, "INVOICE_DISPUTED")] == ["open"]
        [attendance] = graphql(base, ours, ATTENDANCE)["shift"]["attendance"]
        assert (attendance["carerId"], attendance["verified"]) == ("CR-1", False)
        assert attendance["correction"]["reasonCode"] == "device_failure"
        assert attendance["correction"]["correctedBy"] == "coord-7"
        assert datetime.fromisoformat(attendance["correction"]["correctedAt"]) == datetime(
            2026, 4, 17, 10, 30, tzinfo=UTC)

        # 3. The provider's correction bills what was delivered (60 + 45 + 30 minutes = 4050p): matched,
        #    and the alert auto-resolves. A version older than both, arriving last, replaces nothing.
        await produce(broker, topic, [
            _invoice("2026-04-20T09:00:00Z", [("SH-A", 60), ("SH-B", 45), ("SH-C", 30)]),
            _invoice("2026-04-19T10:00:00Z", [("SH-A", 60), ("SH-B", 60), ("SH-C", 60), ("SH-D1", 60)]),
        ])
        wait_for(fresh_database_url, lambda c: settled(
            c, "SELECT count(*) FROM invoice_versions WHERE invoice_id = 'INV-1'", 3) and settled(
            c, "SELECT status FROM alerts WHERE kind = 'INVOICE_DISPUTED'", "auto_resolved"), process)
        third = graphql(base, admin, INVOICE, id="INV-1")["invoice"]
        assert (third["status"], third["invoicedPence"], third["matchedPence"]) == ("MATCHED", 4050, 4050)
        assert [line["finding"] for line in third["lines"]] == ["OK", "OK", "OK"]
        assert [v["invoicedPence"] for v in third["history"]] == [5400, 7200]  # newest first
        [resolved] = _alerts(base, ours, "INVOICE_DISPUTED")
        assert [h["status"] for h in resolved["history"]] == ["open", "auto_resolved"]
        lists = graphql(base, ours, LISTS)
        assert lists["disputed"]["edges"] == []
        assert [e["node"]["id"] for e in lists["matched"]["edges"]] == ["INV-1"]

        # BUDGET_AT_RISK of PKG-BUD (DOMAIN.md "Budget"): nothing spent, so forecast = plan weekly spend x
        # the local weeks left from now (20 April 13:00 BST) to 1 July 00:00: 10 days 11 hours of April,
        # then May and June, 71 days 11 hours = 1715 hours. Budget 130000p, contingency 10000p.
        weeks = Fraction(1715, 168)

        def forecast(minutes: int) -> Fraction:
            return Fraction(minutes * RATE, 60) * weeks

        assert 120_000 < forecast(400) <= 130_000  # 122500p: into the contingency: warning
        [risk] = _alerts(base, ours, "BUDGET_AT_RISK")
        assert (risk["severity"], risk["status"], risk["subjectId"]) == ("warning", "open", BUDGETED)
        assert f"{_pence(forecast(400))}p" in _alerts(base, admin, "BUDGET_AT_RISK")[0]["history"][0]["note"]

        # The plan grows to 460 minutes: 140875p > 130000p, critical; the same alert, its history says so.
        assert forecast(460) > 130_000
        await produce(broker, topic, [_package(BUDGETED, US, "2026-04-20T10:00:00Z", start="2026-04-01",
                                               end="2026-06-30", minutes=460, budget=130_000,
                                               contingency=10_000)])
        wait_for(fresh_database_url, lambda c: settled(
            c, "SELECT severity FROM alerts WHERE kind = 'BUDGET_AT_RISK'", "critical"), process)
        [risk] = _alerts(base, ours, "BUDGET_AT_RISK")
        assert (risk["severity"], risk["status"]) == ("critical", "open")
        assert [(h["status"], h["severity"]) for h in risk["history"]] == [("open", None), ("open", "critical")]
        assert f"{_pence(forecast(460))}p" in risk["history"][1]["note"]

        # Back to 300 minutes: 91875p, within budget - contingency: auto-resolved.
        assert forecast(300) <= 120_000
        await produce(broker, topic, [_package(BUDGETED, US, "2026-04-20T11:00:00Z", start="2026-04-01",
                                               end="2026-06-30", minutes=300, budget=130_000,
                                               contingency=10_000)])
        wait_for(fresh_database_url, lambda c: settled(
            c, "SELECT status FROM alerts WHERE kind = 'BUDGET_AT_RISK'", "auto_resolved"), process)
        assert _alerts(base, rival, "BUDGET_AT_RISK") == [] and _alerts(base, theirs, "BUDGET_AT_RISK") == []
        with psycopg.connect(fresh_database_url) as conn:
            assert scalar(conn, "SELECT count(*) FROM alerts WHERE kind = 'BUDGET_AT_RISK'") == 1
