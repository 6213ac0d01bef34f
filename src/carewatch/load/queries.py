"""The three portal queries of issue 13, each with the role whose token sends it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DELIVERY = ("plannedMinutes scheduledMinutes actualMinutes payableMinutes overrunMinutes unverifiedMinutes "
            "providerCancelledMinutes spendPence varianceMinutes")
BUDGET = "spentPence forecastSpendPence recoverableUnderspendPence contingencyPence budgetPence"

PACKAGES_PAGE = (
    "query PackagesPage($after: String) { packages(first: 50, after: $after) { edges { cursor node {"
    " id commissionerId providerId mechanism periodStart periodEnd budgetPence contingencyPence"
    f" plannedMinutesPerWeek rolling7Days {{ {DELIVERY} }} budget {{ {BUDGET} }} }} }}"
    " pageInfo { hasNextPage endCursor } } }")
SHIFTS_PAGE = (
    "query ShiftsPage($after: String) { shifts(first: 100, after: $after) { edges { cursor node {"
    " id packageId providerId status startsAt endsAt serviceType carersRequired"
    " attendance { carerId clockInAt clockOutAt method verified } actualMinutes payableMinutes spendPence } }"
    " pageInfo { hasNextPage endCursor } } }")
ONE_PACKAGE = (
    "query OnePackage($id: ID!, $from: DateTime!, $to: DateTime!) { package(id: $id) {"
    " id commissionerId providerId budgetPence plannedMinutesPerWeek"
    f" delivery(from: $from, to: $to) {{ {DELIVERY} }} }} }}")


@dataclass(frozen=True)
class PortalQuery:
    name: str
    role: str
    label: str
    query: str
    variables: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"query": self.query, "variables": self.variables}


def portal_queries(package_id: str, now: datetime) -> list[PortalQuery]:
    week = {"id": package_id, "from": (now - timedelta(days=7)).isoformat(), "to": now.isoformat()}
    return [
        PortalQuery("packages", "commissioner", "commissioner: packages(first: 50) with rolling7Days and budget",
                    PACKAGES_PAGE, {}),
        PortalQuery("shifts", "provider", "provider: shifts(first: 100) with attendance", SHIFTS_PAGE, {}),
        PortalQuery("package", "admin", "admin: one package(id) with a 7-day delivery", ONE_PACKAGE, week),
    ]


def aliased_packages(aliases: int = 15, prefix: str = "a") -> str:
    """The issue's costly request: the packages page at 500, under `aliases` aliases (refused by the cost limit).
    Another `prefix` names the aliases differently: a document the API has not read before."""
    page = f"packages(first: 500) {{ edges {{ node {{ id rolling7Days {{ {DELIVERY} }} budget {{ {BUDGET} }} }} }} }}"
    return "{ " + " ".join(f"{prefix}{i}: {page}" for i in range(aliases)) + " }"
