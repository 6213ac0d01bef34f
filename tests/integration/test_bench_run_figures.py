"""The bench's figures line: what a run computed, to compare runs and worker counts."""

from __future__ import annotations

import psycopg
import pytest

from carewatch.bench import run_figures

pytestmark = pytest.mark.services


def test_the_bench_figures_line_sums_ledgers_and_counts_alerts(fresh_database_url: str) -> None:
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("INSERT INTO shift_ledger (shift_id, package_id, provider_id, starts_at, planned_seconds,"
                     " scheduled_seconds, actual_seconds, payable_seconds, overrun_seconds, unverified_seconds,"
                     " provider_cancelled_seconds, day_seconds, night_seconds, weekend_seconds,"
                     " bank_holiday_seconds, rate_seconds, spend_pence, open_attendances, distinct_carers,"
                     " attendance, updated_at) SELECT 'SH-' || n, 'PKG-1', 'PRV-1', now(), 3600, 3600, 3000,"
                     " 3000, 0, 0, 0, 3000, 0, 0, 0, 3000 * 1800, 1500, 0, 1, '[]', now()"
                     " FROM generate_series(1, 2) n")
    # Two shifts of 3,000 payable seconds each at 1,500 pence: 6,000 seconds, 3,000 pence.
    kept, alerts = run_figures(fresh_database_url)
    assert kept.startswith("2 shift ledgers, 6,000 payable seconds, 3000")
    assert kept.endswith("; 0 rejected, 0 held") and alerts == "0 alerts (0 active)"
