"""Three-way match: the valid example invoice INV-77 and the matched/disputed rules."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction
from pathlib import Path

from carewatch.domain.invoice_match import (
    Invoice,
    InvoiceLineInput,
    LineFinding,
    MatchStatus,
    exact_minutes,
    three_way_match,
)
from carewatch.domain.model import Package, PlanLine, Rate

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "contracts" / "valid.jsonl"
EVENTS = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]


def _package() -> Package:
    e = next(e for e in EVENTS if e["type"] == "package.approved")
    return Package(e["package_id"], e["commissioner_id"], e["provider_id"],
                   date.fromisoformat(e["period_start"]), date.fromisoformat(e["period_end"]),
                   e["budget_pence"], e["contingency_pence"],
                   tuple(PlanLine(p["service_type"], p["minutes_per_week"], p["carers"]) for p in e["plan"]),
                   tuple(Rate(r["service_type"], r["band"], r["pence_per_hour"]) for r in e["rates"]))


def _invoice() -> Invoice:
    e = next(e for e in EVENTS if e["type"] == "invoice.submitted")
    lines = tuple(InvoiceLineInput(exact_minutes(x["minutes"]), x["amount_pence"], x.get("shift_id"),
                                   x.get("service_type")) for x in e["lines"])
    return Invoice(e["invoice_id"], e["package_id"], e["provider_id"], date.fromisoformat(e["period_start"]),
                   date.fromisoformat(e["period_end"]), e["total_pence"], lines)


PKG = _package()
SH1_PAYABLE = 1770 + 1625
SH1_RATE_SECONDS = SH1_PAYABLE * 4800  # all bank holiday (Easter Monday)


def test_inv_77_is_matched_with_an_overstated_line() -> None:
    result = three_way_match(PKG, _invoice(), {"SH-1": SH1_PAYABLE, "SH-2": 0}, {"SH-1"}, SH1_RATE_SECONDS,
                             shift_rate_seconds={"SH-1": SH1_RATE_SECONDS, "SH-2": 0})
    assert result.status is MatchStatus.MATCHED and not result.disputed
    assert result.matched_pence == 3214
    assert result.delivered_spend_pence == Fraction(SH1_RATE_SECONDS, 3600)  # 4526.67p
    # The order for 30 days of April: 1260 carer-minutes a week at 3214p an hour.
    assert result.ordered_spend_pence == Fraction(1260 * 3214, 60) * 30 / 7
    assert result.ordered_minutes == Fraction(1260 * 30, 7)
    (line,) = result.lines
    assert line.finding is LineFinding.OVERSTATED
    assert line.payable_minutes == Fraction(3395, 60)  # 56.58 min
    assert line.difference_minutes == 60 - Fraction(3395, 60)
    assert line.difference_pence == 3214 - Fraction(SH1_RATE_SECONDS, 3600)
    assert any("overstated" in r for r in result.reasons)


def _simple(lines: tuple[InvoiceLineInput, ...], total: int) -> Invoice:
    return Invoice("INV", "P", "PRV", date(2026, 1, 5), date(2026, 1, 11), total, lines)


SIMPLE = Package("P", "LA", "PRV", date(2026, 1, 1), date(2026, 12, 31), 1_000_000, 0,
                 plan=(PlanLine("personal_care", 600),), rates=(Rate("personal_care", "day", 2000),))
# Order for the week: 600 min at 2000p/h = 20000p; delivered below: 10000p over two shifts.
PAYABLE = {"A": 9000, "B": 9000, "EMPTY": 0}
ATTENDED = {"A", "B"}
DELIVERED = 18000 * 2000


def test_unproven_lines_dispute_the_invoice() -> None:
    for sid in ("EMPTY", "ELSEWHERE", None):
        lines = (InvoiceLineInput(Fraction(150), 5000, "A"), InvoiceLineInput(Fraction(30), 1000, sid))
        inv = _simple(lines, 6000)
        result = three_way_match(SIMPLE, inv, PAYABLE, ATTENDED, DELIVERED)
        assert result.status is MatchStatus.DISPUTED
        assert [r.finding for r in result.lines] == [LineFinding.OK, LineFinding.UNPROVEN]
        assert result.matched_pence == 6000


def test_total_over_delivered_plus_tolerance_is_disputed() -> None:
    lines = (InvoiceLineInput(Fraction(150), 5000, "A"), InvoiceLineInput(Fraction(150), 5000, "B"))
    # Delivered 10000p: tolerance max(100p, 1%) = 100p, so 10100p matches and 10101p does not.
    within = three_way_match(SIMPLE, _simple(lines, 10100), PAYABLE, ATTENDED, DELIVERED)
    assert within.status is MatchStatus.MATCHED
    over = three_way_match(SIMPLE, _simple(lines, 10101), PAYABLE, ATTENDED, DELIVERED)
    assert over.status is MatchStatus.DISPUTED and over.matched_pence == 10000
    big = three_way_match(SIMPLE, _simple(lines, 20_200), PAYABLE, ATTENDED, 2 * DELIVERED)
    assert big.tolerance_pence == 200 and big.status is MatchStatus.MATCHED


def test_matched_amount_is_capped_by_order_plus_ten_percent() -> None:
    lines = (InvoiceLineInput(Fraction(150), 30_000, "A"),)
    result = three_way_match(SIMPLE, _simple(lines, 30_000), PAYABLE, ATTENDED, 30_000 * 3600)
    assert result.ordered_spend_pence == 20_000
    assert result.matched_pence == 22_000


def test_overstated_is_more_than_one_minute_over_and_counts_repeated_lines() -> None:
    just = (InvoiceLineInput(Fraction(151), 5000, "A"),)
    assert three_way_match(SIMPLE, _simple(just, 5000), PAYABLE, ATTENDED, DELIVERED).lines[0].finding \
        is LineFinding.OK
    over = (InvoiceLineInput(Fraction(15101, 100), 5000, "A"),)
    assert three_way_match(SIMPLE, _simple(over, 5000), PAYABLE, ATTENDED, DELIVERED).lines[0].finding \
        is LineFinding.OVERSTATED
    split = (InvoiceLineInput(Fraction(100), 3000, "A"), InvoiceLineInput(Fraction(100), 3000, "A"))
    result = three_way_match(SIMPLE, _simple(split, 6000), PAYABLE, ATTENDED, DELIVERED)
    assert {r.finding for r in result.lines} == {LineFinding.OVERSTATED}


def test_order_outside_the_package_period_is_zero() -> None:
    inv = Invoice("INV", "P", "PRV", date(2025, 12, 29), date(2026, 1, 4), 0, ())
    result = three_way_match(SIMPLE, inv, {}, set(), 0)
    assert result.ordered_spend_pence == Fraction(20_000 * 4, 7)  # only 1-4 January are ordered


def test_exact_minutes_reads_decimal_text() -> None:
    assert exact_minutes(56.58) == Fraction(5658, 100)
    assert exact_minutes(60) == 60


def test_match_figures_in_integers_agree_with_the_exact_rule() -> None:
    """Statements use match_figures directly: it must say what the rule says, to the penny and the tie."""
    import random

    from carewatch.domain.invoice_match import match_figures
    from carewatch.domain.money import round_half_up

    rng = random.Random(3)
    for _ in range(2000):
        total = rng.randint(0, 50_000)
        delivered_rate_seconds = rng.choice([0, 1800, 3599, 3600 * rng.randint(0, 50_000) + rng.randint(0, 3599)])
        weekly, days = rng.randint(0, 1_500_000), rng.randint(0, 31)
        unproven = rng.random() < 0.2
        delivered = Fraction(delivered_rate_seconds, 3600)
        cap = Fraction(weekly * days, 420) * Fraction(11, 10)
        expected = round_half_up(min(Fraction(total), delivered, cap))
        disputed = unproven or total > delivered + max(Fraction(100), delivered / 100)
        assert match_figures(total, delivered_rate_seconds, weekly, days, unproven) == (expected, disputed)
    # Ties round half up: 1,800 rate seconds is half a penny.
    assert match_figures(10, 1800, 10**9, 7, False)[0] == 1
