"""Issue 2 end to end: the contract stream goes in through Kafka and comes out through GraphQL over HTTP.

Real tansu, PostgreSQL and Redis; the worker and the API run as their own processes, as
in production. The figures are the ones DOMAIN.md implies for contracts/examples/valid.jsonl.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from carewatch.services import Broker, free_port
from procs import api_server, create_token, graphql, produce, scalar, wait_for, worker
from support import contract_lines

pytestmark = pytest.mark.services

PACKAGE = """
query($from: DateTime!, $to: DateTime!) {
  package(id: "PKG-100") {
    id commissionerId providerId mechanism periodStart periodEnd budgetPence contingencyPence
    plannedMinutesPerWeek
    delivery(from: $from, to: $to) {
      plannedMinutes scheduledMinutes actualMinutes payableMinutes overrunMinutes unverifiedMinutes
      providerCancelledMinutes spendPence varianceMinutes
    }
    rolling7Days { actualMinutes payableMinutes spendPence }
    budget { spentPence forecastSpendPence recoverableUnderspendPence contingencyPence budgetPence }
  }
  shift(id: "SH-1") { status carersRequired actualMinutes payableMinutes spendPence
                      attendance { carerId clockInAt clockOutAt method verified } }
  cancelled: shift(id: "SH-2") { status spendPence }
  shifts(filter: {packageId: "PKG-100"}) { edges { node { id status } } }
  invoice(id: "INV-77") { status invoicedPence deliveredPence matchedPence lines { finding } }
}
"""

# SH-1 on Easter Monday 2026 (a bank holiday): carers 29:30 and 27:05, both under the 30-minute plan.
ACTUAL_MINUTES = 3395 / 60
SPEND = 4527  # 3395 s x 4800 p/h / 3600 = 4526.67, half-up


def _metric(text: str, name: str) -> float:
    """Sum of a counter's samples over all its labels, from the Prometheus text format."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


def _figures(base: str, token: str) -> dict[str, Any]:
    return graphql(base, token, PACKAGE, **{"from": "2026-04-06T00:00:00+01:00", "to": "2026-04-13T00:00:00+01:00"})


async def test_contract_stream_through_kafka_reads_back_exactly_over_graphql(
        broker: Broker, fresh_database_url: str, redis_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    valid, invalid = contract_lines("valid.jsonl"), contract_lines("invalid.jsonl")
    token = create_token(fresh_database_url, "admin")
    # The processing clock a week after the visit, so rolling7Days still holds it.
    clock = {"CAREWATCH_CLOCK": "fixed:2026-04-12T12:00:00+00:00"}
    with worker(broker, fresh_database_url, topic, **clock) as process, \
            api_server(broker, fresh_database_url, redis_url, topic, **clock) as base:
        await produce(broker, topic, valid + invalid)
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM events") == len(valid)
                 and scalar(c, "SELECT count(*) FROM rejected_events") == len(invalid)
                 and scalar(c, "SELECT count(*) FROM shift_ledger") == 2, process)
        data = _figures(base, token)

        package = data["package"]
        assert package["plannedMinutesPerWeek"] == 1260  # 840 x 1 + 210 x 2
        assert (package["periodStart"], package["periodEnd"]) == ("2026-04-01", "2027-03-31")
        delivery = package["delivery"]
        assert delivery["plannedMinutes"] == pytest.approx(1260)
        assert delivery["scheduledMinutes"] == pytest.approx(60)  # SH-1 only: SH-2 was cancelled by the person
        assert delivery["actualMinutes"] == pytest.approx(ACTUAL_MINUTES)
        assert delivery["payableMinutes"] == pytest.approx(ACTUAL_MINUTES)
        assert delivery["overrunMinutes"] == 0 and delivery["unverifiedMinutes"] == 0
        assert delivery["providerCancelledMinutes"] == 0
        assert delivery["spendPence"] == SPEND
        assert delivery["varianceMinutes"] == pytest.approx(ACTUAL_MINUTES - 1260)
        assert package["rolling7Days"]["spendPence"] == SPEND
        budget = package["budget"]
        assert budget["spentPence"] == SPEND
        assert (budget["budgetPence"], budget["contingencyPence"]) == (3500000, 150000)
        assert budget["forecastSpendPence"] > SPEND
        assert budget["recoverableUnderspendPence"] == max(0, 3500000 - 150000 - budget["forecastSpendPence"])

        sh1 = data["shift"]
        assert sh1["status"] == "COMPLETED" and sh1["spendPence"] == SPEND
        assert sorted(a["carerId"] for a in sh1["attendance"]) == ["CR-001", "CR-002"]
        assert all(a["verified"] for a in sh1["attendance"])
        assert data["cancelled"] == {"status": "CANCELLED", "spendPence": 0}
        assert [e["node"]["id"] for e in data["shifts"]["edges"]] == ["SH-1", "SH-2"]
        invoice = data["invoice"]
        assert invoice["status"] == "MATCHED" and invoice["matchedPence"] == 3214
        assert invoice["deliveredPence"] == SPEND
        assert [line["finding"] for line in invoice["lines"]] == ["OVERSTATED"]

    # Replaying the whole topic (a new consumer group reads it from the start) changes nothing.
    with psycopg.connect(fresh_database_url) as conn:
        rejected_before = scalar(conn, "SELECT count(*) FROM rejected_events")
    metrics_port = free_port()
    with worker(broker, fresh_database_url, topic, CAREWATCH_WORKER_METRICS_PORT=str(metrics_port),
                **clock) as process, \
            api_server(broker, fresh_database_url, redis_url, topic, **clock) as base:
        # The new group has read the whole topic again once it has counted every line once more.
        def replayed() -> bool:
            assert process.poll() is None, "the replaying worker died"
            try:
                text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return False
            return (_metric(text, "carewatch_events_duplicate_total") >= len(valid)
                    and _metric(text, "carewatch_events_rejected_total") >= len(invalid))

        deadline = time.monotonic() + 30
        while not replayed():
            assert time.monotonic() < deadline, "the replay was not read in time"
            time.sleep(0.3)
        assert _figures(base, token) == data
        with psycopg.connect(fresh_database_url) as conn:
            assert scalar(conn, "SELECT count(*) FROM rejected_events") == rejected_before
