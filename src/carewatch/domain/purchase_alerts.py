"""Purchase-to-pay alerts (DOMAIN.md "Invoices over time", "Budget at risk"): pure decisions.

INVOICE_DISPUTED names the invoice and carries its package; BUDGET_AT_RISK names the package and
is graded: `warning` when the forecast eats into the contingency, `critical` when it exceeds the budget.
"""

from __future__ import annotations

from carewatch.domain.alert_rules import AlertDecision, AlertKind
from carewatch.domain.budget import BudgetStatus
from carewatch.domain.invoice_match import Invoice, InvoiceMatch
from carewatch.domain.model import Package
from carewatch.domain.money import round_half_up


def invoice_disputed(invoice: Invoice, match: InvoiceMatch, commissioner_id: str | None) -> AlertDecision:
    """Raise while the latest version's three-way match says disputed; resolve once it says matched."""
    if not match.disputed:
        return AlertDecision("resolve", AlertKind.INVOICE_DISPUTED, "invoice", invoice.invoice_id,
                             package_id=invoice.package_id, provider_id=invoice.provider_id,
                             commissioner_id=commissioner_id,
                             details={"status": match.status.value, "matched_pence": match.matched_pence})
    delivered = round_half_up(match.delivered_spend_pence)
    return AlertDecision(
        "raise", AlertKind.INVOICE_DISPUTED, "invoice", invoice.invoice_id,
        f"Invoice {invoice.invoice_id} of package {invoice.package_id} ({invoice.period_start.isoformat()} to "
        f"{invoice.period_end.isoformat()}) bills {invoice.total_pence}p against {delivered}p delivered: "
        + "; ".join(match.reasons),
        package_id=invoice.package_id, provider_id=invoice.provider_id, commissioner_id=commissioner_id,
        details={"invoice_id": invoice.invoice_id, "invoiced_pence": invoice.total_pence,
                 "delivered_pence": delivered, "ordered_pence": round_half_up(match.ordered_spend_pence),
                 "matched_pence": match.matched_pence, "reasons": list(match.reasons),
                 "lines": [{"shift_id": r.shift_id, "finding": r.finding.value,
                            "difference_minutes": float(r.difference_minutes)} for r in match.lines]},
    )


def budget_at_risk(package: Package, status: BudgetStatus) -> AlertDecision:
    """Warning above budget - contingency, critical above the budget, resolved when back within."""
    figures = {"forecast_spend_pence": status.forecast_spend_pence, "spent_pence": status.spent_pence,
               "budget_pence": package.budget_pence, "contingency_pence": package.contingency_pence}
    level = status.risk
    if level is None:
        return AlertDecision("resolve", AlertKind.BUDGET_AT_RISK, "package", package.package_id,
                             package_id=package.package_id, provider_id=package.provider_id,
                             commissioner_id=package.commissioner_id, details=figures)
    free = package.budget_pence - package.contingency_pence
    beyond = (f"over its budget of {package.budget_pence}p" if level == "critical"
              else f"into its {package.contingency_pence}p contingency (over {free}p)")
    return AlertDecision(
        "raise", AlertKind.BUDGET_AT_RISK, "package", package.package_id,
        f"Package {package.package_id} is forecast to spend {status.forecast_spend_pence}p by "
        f"{package.period_end.isoformat()} ({status.spent_pence}p spent so far), {beyond}",
        package_id=package.package_id, provider_id=package.provider_id, commissioner_id=package.commissioner_id,
        details={**figures, "level": level}, level="critical" if level == "critical" else "warning",
    )
