"""INVOICE_DISPUTED and BUDGET_AT_RISK decisions (DOMAIN.md "Invoices over time", "Budget at risk"), figures by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

from carewatch.domain.alert_rules import AlertKind
from carewatch.domain.budget import budget_status
from carewatch.domain.invoice_match import Invoice, InvoiceLineInput, invoice_from_payload, match_against_ledgers
from carewatch.domain.model import Package, PlanLine, Rate, ShiftLedger
from carewatch.domain.purchase_alerts import budget_at_risk, invoice_disputed

RATE = 1800
# 400 carer-minutes a week at 1800p/h: 12000p a week. 13 weeks from Monday 5 January 2026 (GMT, no clock change).
PKG = Package("PKG", "LA", "PRV", date(2026, 1, 5), date(2026, 4, 5), budget_pence=130_000,
              contingency_pence=10_000, plan=(PlanLine("personal_care", 400, 1),),
              rates=(Rate("personal_care", "day", RATE),))
NOW = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # the period's first instant: 13 whole weeks remain


def _ledger(shift_id: str, payable_minutes: int) -> ShiftLedger:
    seconds = payable_minutes * 60
    return ShiftLedger(shift_id, "PKG", "PRV", datetime(2026, 1, 6, 9, tzinfo=UTC), 3600, 3600, seconds, seconds,
                       0, 0, 0, {"day": seconds}, seconds * RATE)


def _invoice(*lines: tuple[str | None, int]) -> Invoice:
    billed = tuple(InvoiceLineInput(Fraction(m), m * RATE // 60, s, "personal_care") for s, m in lines)
    return Invoice("INV-1", "PKG", "PRV", date(2026, 1, 5), date(2026, 1, 11),
                   sum(line.amount_pence for line in billed), billed)


def test_a_disputed_invoice_raises_with_its_package_and_a_matched_one_resolves() -> None:
    delivered = [_ledger("SH-A", 60), _ledger("SH-B", 45)]  # 1800p + 1350p = 3150p
    # 150 min x 30p = 4500p > 3150p + 100p, and a line names no shift
    over = _invoice(("SH-A", 60), ("SH-B", 60), (None, 30))
    decision = invoice_disputed(over, match_against_ledgers(PKG, over, delivered), "LA")
    assert (decision.action, decision.kind, decision.subject_type, decision.subject_id) == (
        "raise", AlertKind.INVOICE_DISPUTED, "invoice", "INV-1")
    assert (decision.package_id, decision.provider_id, decision.commissioner_id) == ("PKG", "PRV", "LA")
    assert (decision.details["invoiced_pence"], decision.details["delivered_pence"]) == (4500, 3150)
    assert decision.details["matched_pence"] == 3150  # min(4500, 3150, 12000 x 110%)
    assert [line["finding"] for line in decision.details["lines"]] == ["OK", "OVERSTATED", "UNPROVEN"]
    assert "4500p" in decision.message and "3150p" in decision.message
    fair = _invoice(("SH-A", 60), ("SH-B", 45))
    assert invoice_disputed(fair, match_against_ledgers(PKG, fair, delivered), "LA").action == "resolve"


def test_invoice_payload_reads_minutes_through_their_decimal_text() -> None:
    invoice = invoice_from_payload({"invoice_id": "I", "package_id": "P", "provider_id": "V",
                                    "period_start": "2026-01-05", "period_end": "2026-01-11", "total_pence": 10,
                                    "lines": [{"shift_id": "S", "minutes": 0.1, "amount_pence": 10}]})
    assert invoice.lines[0].minutes == Fraction(1, 10) and invoice.period_end == date(2026, 1, 11)


def test_budget_at_risk_levels() -> None:
    # Forecast = spent + 12000p x 13 weeks = spent + 156000p. Budget 130000p: critical even with nothing spent.
    assert budget_at_risk(PKG, budget_status(PKG, 0, NOW)).level == "critical"
    # A bigger budget: 160000p, contingency 10000p: 156000p > 150000p is a warning.
    roomy = Package(**{**PKG.__dict__, "budget_pence": 160_000})
    warning = budget_at_risk(roomy, budget_status(roomy, 0, NOW))
    assert (warning.action, warning.severity, warning.subject_id) == ("raise", "warning", "PKG")
    assert warning.details["forecast_spend_pence"] == 156_000 and "156000p" in warning.message
    # 5000p spent already (rate seconds = pence x 3600) takes it over 160000p: critical.
    assert budget_at_risk(roomy, budget_status(roomy, 5000 * 3600, NOW)).severity == "critical"
    # 170000p: 156000p is within 160000p = budget - contingency: resolved.
    ample = Package(**{**PKG.__dict__, "budget_pence": 170_000})
    assert budget_at_risk(ample, budget_status(ample, 0, NOW)).action == "resolve"
    # The default severity of a kind is unchanged for ungraded decisions.
    assert budget_at_risk(ample, budget_status(ample, 0, NOW)).severity == "warning"
