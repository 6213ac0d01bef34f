"""Statements (DOMAIN.md "Statements"): sums over packages, never averages of ratios; the league order."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from carewatch.domain.statements import (
    RECOVERABLE_DEN,
    PackageFigures,
    Spans,
    StatementScope,
    league_table,
    ordered_days,
    recoverable_underspend,
    spans,
    statement,
)

APRIL = (date(2026, 4, 1), date(2026, 5, 1))


def test_ordered_days_counts_only_the_package_period() -> None:
    # Period 1 April 2026 to 31 March 2027 inclusive; window 25 March to 8 April: 1..7 April.
    assert ordered_days(date(2026, 4, 1), date(2027, 3, 31), date(2026, 3, 25), date(2026, 4, 8)) == 7
    # The last day of the period counts (period_end is inclusive).
    assert ordered_days(date(2026, 4, 1), date(2026, 4, 30), date(2026, 4, 30), date(2026, 5, 5)) == 1
    assert ordered_days(date(2026, 4, 1), date(2026, 4, 30), date(2026, 5, 1), date(2026, 6, 1)) == 0


def test_spans_cut_whole_months_and_edge_days() -> None:
    assert spans(*APRIL) == Spans((date(2026, 4, 1), date(2026, 5, 1)), (date(2026, 4, 1), date(2026, 4, 1)),
                                  (date(2026, 5, 1), date(2026, 5, 1)))
    assert spans(date(2025, 10, 15), date(2026, 1, 10)) == Spans(
        (date(2025, 11, 1), date(2026, 1, 1)), (date(2025, 10, 15), date(2025, 11, 1)),
        (date(2026, 1, 1), date(2026, 1, 10)))
    within = spans(date(2025, 11, 3), date(2025, 11, 20))
    assert within.months[0] == within.months[1]
    assert within.days_before == (date(2025, 11, 3), date(2025, 11, 20))


def test_a_provider_statement_is_the_sum_of_its_packages_rounded_once() -> None:
    # A: ordered 420 min and 16,800p (one hour a day at 2,400p/h over 7 days), delivered 300 minutes,
    # half a penny of spend beyond 12,000p; B the same half penny: together exactly 24,001p, where
    # rounding each first would say 24,002p.
    half = RECOVERABLE_DEN // 2  # half a penny
    a = PackageFigures("A", "PRV", "LA", ordered_minutes_x7=420 * 7, ordered_pence_x420=16_800 * 420,
                       payable_seconds=300 * 60, rate_seconds=12_000 * 3600 + 1800, unverified_seconds=600,
                       direct_seconds=600 * 60, non_direct_minutes=Decimal(60), invoiced_pence=13_000,
                       matched_pence=12_000, disputed_invoices=1, recoverable_x=half)
    b = PackageFigures("B", "PRV", "LA", ordered_minutes_x7=420 * 7, ordered_pence_x420=16_800 * 420,
                       payable_seconds=400 * 60, rate_seconds=12_000 * 3600 + 1800, direct_seconds=300 * 60,
                       invoiced_pence=12_000, matched_pence=12_000, recoverable_x=half)
    s = statement(StatementScope.PROVIDER, "PRV", *APRIL, [a, b], unattached_non_direct_minutes=Fraction(40))
    assert s.packages == 2
    assert s.ordered_minutes == 840 and s.ordered_pence == 33_600
    assert s.delivered_minutes == 700 and s.delivered_pence == 24_001
    assert s.unverified_minutes == 10
    assert (s.invoiced_pence, s.matched_pence, s.disputed_invoices) == (25_000, 24_000, 1)
    assert s.variance_minutes == -140
    assert s.recoverable_underspend_pence == 1  # 1/2 + 1/2, not 1 + 1
    # Non-direct share over all the provider's time: (60 + 40) / (600 + 300 + 60 + 40) = 0.1 exactly;
    # the average of the packages' shares would be (60/660 + 0) / 2.
    assert s.non_direct_care_share == Fraction(1, 10)


def test_no_non_direct_time_logged_gives_no_share() -> None:
    only_care = PackageFigures("A", "PRV", "LA", direct_seconds=3600)
    assert statement(StatementScope.PACKAGE, "A", *APRIL, [only_care]).non_direct_care_share is None


def test_league_table_puts_the_most_under_delivered_share_first() -> None:
    def made(key: str, ordered: int, delivered_minutes: int) -> PackageFigures:
        return PackageFigures(key, key, "LA", ordered_minutes_x7=ordered * 7,
                              payable_seconds=delivered_minutes * 60)

    table = league_table(statement(StatementScope.PROVIDER, f.provider_id, *APRIL, [f]) for f in [
        made("P-OVER", 100, 110),      # +10%
        made("P-NONE", 0, 50),         # nothing ordered: last
        made("P-SMALL", 1000, 950),    # -5%, though -50 minutes
        made("P-WORST", 100, 80),      # -20%, though only -20 minutes
    ])
    assert [s.id for s in table] == ["P-WORST", "P-SMALL", "P-OVER", "P-NONE"]


def test_recoverable_underspend_follows_the_budget_rule() -> None:
    # Budget 100,000p with 10,000p contingency; spent 50,000p (x 3600 in rate seconds); plan 2,000p a
    # week (x 60); 10 weeks left: forecast 70,000p, so 20,000p can be recovered; once the period has
    # ended (no time left), 40,000p.
    week = 7 * 24 * 3600
    spent, weekly = 50_000 * 3600, 2_000 * 60
    assert Fraction(recoverable_underspend(100_000, 10_000, spent, weekly, 10 * week), RECOVERABLE_DEN) == 20_000
    assert Fraction(recoverable_underspend(100_000, 10_000, spent, weekly, 0), RECOVERABLE_DEN) == 40_000
    assert recoverable_underspend(100_000, 10_000, 95_000 * 3600, 0, 0) == 0
