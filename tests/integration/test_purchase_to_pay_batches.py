"""Purchase to pay in the batch (pipeline/purchase_to_pay.py): alerts that do not depend on how the stream
was batched, and the scheduler's daily budget check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from carewatch.alerts.budgets import sweep_budgets
from carewatch.pipeline.batch import apply_batch
from carewatch.schema.events import CareEvent
from support import care_event, make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
RATE = 1800


def _package(n: str, at: str, minutes: int, budget: int = 10_000_000) -> CareEvent:
    return care_event(n, "package.approved", at, package_id="PKG", commissioner_id="LA", provider_id="PRV",
                  person={"person_id": "P", "nhs_number": "9434765919"}, period_start="2026-04-01",
                  period_end="2026-06-30", budget_pence=budget, contingency_pence=10_000,
                  plan=[{"service_type": "personal_care", "minutes_per_week": minutes, "carers": 1}],
                  rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": RATE}])


def _setup() -> list[CareEvent]:
    return [
        care_event("c", "commissioner.registered", "2026-04-01T08:00:00Z", commissioner_id="LA", name="LA"),
        care_event("p", "provider.registered", "2026-04-01T08:00:00Z", provider_id="PRV", name="PRV"),
        care_event("k", "carer.registered", "2026-04-01T08:00:00Z", carer_id="CR", provider_id="PRV",
               pay_pence_per_hour=1400),
        _package("pkg", "2026-04-01T08:00:00Z", 420),
        care_event("s", "shift.scheduled", "2026-04-10T08:00:00Z", shift_id="SH", package_id="PKG", provider_id="PRV",
               starts_at="2026-04-14T08:00:00Z", ends_at="2026-04-14T09:00:00Z", service_type="personal_care"),
        care_event("i", "visit.clock_in", "2026-04-14T08:00:00Z", shift_id="SH", package_id="PKG", provider_id="PRV",
               carer_id="CR", method="nfc"),
        care_event("o", "visit.clock_out", "2026-04-14T09:00:00Z", shift_id="SH", package_id="PKG", provider_id="PRV",
               carer_id="CR", method="nfc"),
    ]


def _invoice(n: str, at: str, minutes: int) -> CareEvent:
    """INV bills SH: 60 minutes (1800p) is what was delivered; more is disputed (over 1800p + 100p)."""
    return care_event(n, "invoice.submitted", at, invoice_id="INV", package_id="PKG", provider_id="PRV",
                  period_start="2026-04-13", period_end="2026-04-19", total_pence=minutes * RATE // 60,
                  lines=[{"shift_id": "SH", "minutes": minutes, "amount_pence": minutes * RATE // 60}])


async def _alerts(batches: list[list[CareEvent]]) -> list[tuple[Any, ...]]:
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for batch in batches:
            await apply_batch(conn, batch, NOW)
        cur = await conn.execute(
            "SELECT a.kind, a.subject_id, a.status, a.severity, array_agg(h.status ORDER BY h.id)"
            " FROM alerts a JOIN alert_history h ON h.alert_id = a.id"
            " WHERE a.kind = 'INVOICE_DISPUTED' GROUP BY a.id ORDER BY a.id")
        found = await cur.fetchall()
        cur = await conn.execute("SELECT total_pence, status, matched_pence FROM invoices")
        found.append(await cur.fetchone())
    return found


async def test_versions_of_an_invoice_give_the_same_alerts_in_one_batch_or_in_several() -> None:
    disputed = _invoice("v1", "2026-04-19T20:00:00Z", 90)  # 2700p > 1900p
    corrected = _invoice("v2", "2026-04-20T09:00:00Z", 60)  # 1800p: matched
    stale = _invoice("v0", "2026-04-19T10:00:00Z", 120)  # older than both: history only
    want = [("INVOICE_DISPUTED", "INV", "auto_resolved", "warning", ["open", "auto_resolved"]),
            (1800, "MATCHED", 1800)]
    assert await _alerts([_setup(), [disputed], [corrected], [stale]]) == want
    assert await _alerts([_setup(), [disputed, corrected, stale]]) == want
    assert await _alerts([[*_setup(), stale, corrected, disputed]]) == want
    # Only the stale version, arriving after the correction: it never replaces it, so no dispute.
    assert await _alerts([_setup(), [corrected], [stale]]) == [(1800, "MATCHED", 1800)]


async def test_the_daily_check_judges_the_packages_no_batch_judged_for_a_day() -> None:
    # 420 minutes a week at 1800p/h = 12600p; from 20 April 13:00 BST to 1 July, 1715 hours = 1715/168 weeks:
    # forecast 1800p spent + 128625p = 130425p. Budget 125000p: critical.
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, _setup(), NOW - timedelta(days=2))
        # Written by hand: a budget cut no event told the pipeline about (the check runs on what is stored).
        await conn.execute("UPDATE packages SET budget_pence = 125000")
        await conn.commit()
        async with conn.transaction():
            assert await sweep_budgets(conn, NOW - timedelta(days=1, seconds=1)) == []  # judged < a day ago
        async with conn.transaction():
            [alert] = await sweep_budgets(conn, NOW)
        assert (alert.kind, alert.subject_id, alert.severity, alert.status) == (
            "BUDGET_AT_RISK", "PKG", "critical", "open")
        assert "130425p" in alert.message
        async with conn.transaction():
            assert await sweep_budgets(conn, NOW + timedelta(hours=1)) == []  # judged just now


async def test_a_budget_is_judged_when_its_spend_moves_not_on_every_rebuild() -> None:
    """DOMAIN.md "Budget at risk": judged on a change of spend or plan. A batch that rebuilds a shift
    without moving its spend (a shift announced, a clock-in) leaves a fresh check alone; a clock-out
    that moves the spend is judged at once."""
    url = make_database()
    setup = _setup()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, setup[:5], NOW)  # registered, approved, SH announced: judged (plan)
        await conn.execute("UPDATE packages SET budget_pence = 125000")  # a cut no event announced
        await conn.commit()

        async def checks() -> list[tuple[Any, ...]]:
            cur = await conn.execute("SELECT level FROM budget_checks")
            return await cur.fetchall()

        assert await checks() == [(None,)]
        another = care_event("s2", "shift.scheduled", "2026-04-12T08:00:00Z", shift_id="SH2", package_id="PKG",
                         provider_id="PRV", starts_at="2026-04-21T08:00:00Z", ends_at="2026-04-21T09:00:00Z",
                         service_type="personal_care")
        outcome = await apply_batch(conn, [another, setup[5]], NOW + timedelta(minutes=5))  # no spend moved
        assert [a.kind for a in outcome.alerts if a.kind == "BUDGET_AT_RISK"] == []
        assert await checks() == [(None,)]
        outcome = await apply_batch(conn, [setup[6]], NOW + timedelta(minutes=10))  # the clock-out: 1800p spent
        assert [(a.kind, a.severity) for a in outcome.alerts if a.kind == "BUDGET_AT_RISK"] == [
            ("BUDGET_AT_RISK", "critical")]
        # Rebuilt without moving the spend, but the check is over an hour old: judged again (unchanged).
        late = care_event("o2", "visit.clock_in", "2026-04-21T08:00:00Z", shift_id="SH2", package_id="PKG",
                      provider_id="PRV", carer_id="CR", method="nfc")
        await conn.execute("UPDATE packages SET budget_pence = 10000000")
        await conn.commit()
        outcome = await apply_batch(conn, [late], NOW + timedelta(hours=2))
        assert [(a.kind, a.status) for a in outcome.alerts if a.kind == "BUDGET_AT_RISK"] == [
            ("BUDGET_AT_RISK", "auto_resolved")]
