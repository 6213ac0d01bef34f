"""BudgetStatus: spend, forecast and recoverable underspend of a package's budget period."""

import strawberry

from carewatch.domain import budget as budget_rules


@strawberry.type(description="The package's budget period: spent, forecast and what can be reclaimed.")
class BudgetStatus:
    spent_pence: int
    forecast_spend_pence: int
    recoverable_underspend_pence: int = strawberry.field(
        description="Money reclaimable without touching the agreed contingency.")
    contingency_pence: int
    budget_pence: int

    @classmethod
    def from_domain(cls, b: budget_rules.BudgetStatus) -> "BudgetStatus":
        return cls(
            spent_pence=b.spent_pence,
            forecast_spend_pence=b.forecast_spend_pence,
            recoverable_underspend_pence=b.recoverable_underspend_pence,
            contingency_pence=b.contingency_pence,
            budget_pence=b.budget_pence,
        )
