"""Deadline sweeps: set-based SQL finds the few shifts, packages, providers and carers whose alerts may
change now; the pure rules in domain/alert_rules.py decide; the store writes idempotently.

Each sweep runs in the caller's transaction and returns the alerts it changed, to be published
after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from carewatch.alerts.double_booking import sweep_double_bookings
from carewatch.alerts.record import AlertRecord
from carewatch.alerts.repository import apply_decisions, open_subjects, worth_applying
from carewatch.domain import alert_rules as rules
from carewatch.domain.alert_rules import (
    AlertDecision,
    AlertKind,
    PackageDelivery,
    VisitState,
)
from carewatch.domain.effective_pay import pay_decision
from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.domain.thresholds import DEFAULT_THRESHOLDS, Thresholds, resolve_thresholds
from carewatch.domain.visits import visit_decisions, visit_state
from carewatch.store.carer_weeks import carer_weeks
from carewatch.store.shift_facts import load_shift_facts

ABSENCE_KINDS = (
    AlertKind.LATE_START,
    AlertKind.MISSED_VISIT,
    AlertKind.PARTIAL_ATTENDANCE,
    AlertKind.LONE_WORKER_OVERDUE,
)
SLOW_KINDS = (
    AlertKind.UNDER_DELIVERY,
    AlertKind.OVER_DELIVERY,
    AlertKind.PROVIDER_PATTERN,
    AlertKind.PAY_BELOW_MINIMUM,
)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class SweepConfig:
    thresholds: Thresholds = DEFAULT_THRESHOLDS  # the global settings
    lookback: timedelta = timedelta(days=2)  # shifts that started this long ago are still watched
    timezone: str = DEFAULT_TIMEZONE  # for "the day" of the National Living Wage and package periods
    # How long UNKNOWN_CARER and PAY_BELOW_MINIMUM wait for facts from other partitions (alerts/settled.py).
    settle: timedelta = timedelta(seconds=60)


_TH = "carewatch_threshold(p.thresholds, ct.thresholds, '{name}', %(d_{name})s) * interval '1 minute'"

# Shifts whose absence alerts may change now: a deadline passed with nobody (or not everyone, or a
# carer still) clocked in and no such alert yet, or an absence alert still open.
_ABSENCE_CANDIDATES = f"""
WITH watched AS (
    SELECT s.shift_id, s.starts_at, s.ends_at, s.carers_required, s.cancelled_by,
           s.starts_at + {_TH.format(name="late_start_minutes")} AS late_at,
           s.starts_at + {_TH.format(name="missed_visit_minutes")} AS missed_at,
           s.starts_at + {_TH.format(name="partial_attendance_minutes")} AS partial_at,
           s.ends_at + {_TH.format(name="lone_worker_overdue_minutes")} AS lone_at
    FROM shifts s
    LEFT JOIN packages p ON p.package_id = s.package_id
    LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id
    WHERE s.starts_at >= %(since)s AND s.starts_at <= %(now)s
), arrived AS (
    SELECT w.*,
           (SELECT count(DISTINCT c.carer_id) FROM clock_events c
             WHERE c.shift_id = w.shift_id AND c.direction = 'in') +
           (SELECT count(DISTINCT v.carer_id) FROM visit_corrections v
             WHERE v.shift_id = w.shift_id) AS carers_in
    FROM watched w
)
SELECT shift_id FROM arrived a
WHERE a.cancelled_by IS NULL AND a.carers_in = 0 AND (
    (a.late_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM alerts x
        WHERE x.subject_id = a.shift_id AND x.kind = 'LATE_START'))
    OR (a.missed_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM alerts x
        WHERE x.subject_id = a.shift_id AND x.kind = 'MISSED_VISIT')))
UNION
SELECT shift_id FROM arrived a
WHERE a.cancelled_by IS NULL AND a.carers_required >= 2 AND a.partial_at <= %(now)s
  AND a.carers_in BETWEEN 1 AND a.carers_required - 1
  AND NOT EXISTS (SELECT 1 FROM alerts x WHERE x.subject_id = a.shift_id AND x.kind = 'PARTIAL_ATTENDANCE')
UNION
SELECT shift_id FROM arrived a
WHERE a.lone_at <= %(now)s AND EXISTS (
    SELECT 1 FROM clock_events c
    WHERE c.shift_id = a.shift_id AND c.direction = 'in'
      AND NOT EXISTS (SELECT 1 FROM clock_events o WHERE o.shift_id = c.shift_id AND o.direction = 'out'
                        AND o.carer_id = c.carer_id AND o.at >= c.at)
      AND NOT EXISTS (SELECT 1 FROM visit_corrections v
                      WHERE v.shift_id = c.shift_id AND v.carer_id = c.carer_id)
      AND NOT EXISTS (SELECT 1 FROM alerts x WHERE x.subject_id = c.carer_id || '@' || c.shift_id
                        AND x.kind = 'LONE_WORKER_OVERDUE'))
UNION
SELECT shift_id FROM alerts
WHERE status IN ('open', 'acknowledged') AND kind = ANY(%(absence)s) AND shift_id IS NOT NULL
"""


def _threshold_params(th: Thresholds) -> dict[str, float]:
    return {
        f"d_{name}": getattr(th, name)
        for name in (
            "late_start_minutes",
            "missed_visit_minutes",
            "partial_attendance_minutes",
            "lone_worker_overdue_minutes",
        )
    }


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def load_visits(
    conn: AsyncConnection[Any], shift_ids: Sequence[str], global_th: Thresholds
) -> list[tuple[VisitState, Thresholds]]:
    """Shifts with their attendance so far and their thresholds."""
    facts = await load_shift_facts(conn, shift_ids)
    return [visit_state(f, global_th) for f in facts.values()]


async def sweep_absences(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    """LATE_START, MISSED_VISIT, PARTIAL_ATTENDANCE and LONE_WORKER_OVERDUE, raised and resolved; and
    DOUBLE_BOOKED_CARER for overlaps that began, by this clock, after their events were processed."""
    return await _sweep_absences(conn, now, config) + await sweep_double_bookings(conn, now, config.lookback)


async def _sweep_absences(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    cur = await conn.execute(
        _ABSENCE_CANDIDATES,
        {
            "now": now,
            "since": now - config.lookback,
            "absence": [k.value for k in ABSENCE_KINDS],
            **_threshold_params(config.thresholds),
        },
    )
    shift_ids = [r[0] for r in await cur.fetchall()]
    if not shift_ids:
        return []
    decisions: list[AlertDecision] = []
    for visit, th in await load_visits(conn, shift_ids, config.thresholds):
        decisions += visit_decisions(visit, th, now)
    return await apply_decisions(
        conn, worth_applying(decisions, await open_subjects(conn, ABSENCE_KINDS)), now
    )


def _local_midnight(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0), tz).astimezone(UTC)


async def sweep_delivery(
    conn: AsyncConnection[Any], now: datetime, config: SweepConfig
) -> list[AlertDecision]:
    cur = await conn.execute(
        """SELECT p.package_id, p.commissioner_id, p.provider_id, p.period_start, p.period_end, p.approved_at,
                  p.planned_minutes_per_week, p.thresholds, ct.thresholds, coalesce(c.timezone, %(tz)s),
                  coalesce((SELECT sum(l.actual_seconds) FROM shift_ledger l WHERE l.package_id = p.package_id
                            AND l.starts_at >= %(week_ago)s AND l.starts_at < %(now)s), 0)
           FROM packages p
           LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
           LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id
           WHERE (p.period_start <= %(today)s + 1 AND p.period_end >= %(today)s - 1)
              OR p.package_id IN (SELECT subject_id FROM alerts WHERE status IN ('open', 'acknowledged')
                                  AND kind IN ('UNDER_DELIVERY', 'OVER_DELIVERY'))""",
        {"tz": config.timezone, "week_ago": now - WEEK, "now": now, "today": now.date()},
    )
    decisions: list[AlertDecision] = []
    for pkg, com, prv, start, end, approved, plan, pkg_th, com_th, tz_name, actual in await cur.fetchall():
        try:
            tz = ZoneInfo(tz_name)
        except (ValueError, KeyError):
            tz = ZoneInfo(config.timezone)
        th = resolve_thresholds(config.thresholds, _json(com_th), _json(pkg_th))
        delivery = PackageDelivery(
            pkg,
            com,
            prv,
            max(_local_midnight(start, tz), approved),
            _local_midnight(end + timedelta(days=1), tz),
            int(actual),
            Fraction(plan),
        )
        decisions += rules.delivery_alerts(delivery, th, now)
    return decisions


async def sweep_provider_pattern(
    conn: AsyncConnection[Any], now: datetime, config: SweepConfig
) -> list[AlertDecision]:
    """Due = not cancelled, started in the last 7 days, missed deadline passed; missed = still no clock-in."""
    cur = await conn.execute(
        f"""SELECT s.provider_id, count(*),
                   count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM clock_events c
                                                       WHERE c.shift_id = s.shift_id AND c.direction = 'in')
                                      AND NOT EXISTS (SELECT 1 FROM visit_corrections v
                                                       WHERE v.shift_id = s.shift_id))
            FROM shifts s
            LEFT JOIN packages p ON p.package_id = s.package_id
            LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id
            WHERE s.starts_at >= %(week_ago)s AND s.starts_at <= %(now)s AND s.cancelled_by IS NULL
              AND s.starts_at + {_TH.format(name="missed_visit_minutes")} <= %(now)s
            GROUP BY s.provider_id""",
        {"week_ago": now - WEEK, "now": now, **_threshold_params(config.thresholds)},
    )
    counts = {prv: (int(due), int(missed)) for prv, due, missed in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT subject_id FROM alerts WHERE kind = 'PROVIDER_PATTERN' AND status IN ('open', 'acknowledged')"
    )
    for (prv,) in await cur.fetchall():
        counts.setdefault(prv, (0, 0))
    return [
        rules.provider_pattern(prv, due, missed, config.thresholds) for prv, (due, missed) in counts.items()
    ]


async def sweep_pay(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertDecision]:
    """PAY_BELOW_MINIMUM by today's rate, keeping those a week's effective pay holds open (domain/effective_pay.py)."""
    today = now.astimezone(ZoneInfo(config.timezone)).date()
    nlw = rules.national_living_wage(today) or 0
    cur = await conn.execute(
        """SELECT carer_id, provider_id, pay_pence_per_hour, date_of_birth FROM carers
           WHERE pay_pence_per_hour < %s
              OR carer_id IN (SELECT subject_id FROM alerts WHERE kind = 'PAY_BELOW_MINIMUM'
                              AND status IN ('open', 'acknowledged'))""",
        (nlw,),
    )
    found = await cur.fetchall()
    weeks = await carer_weeks(conn, [carer for carer, *_ in found])
    return [
        pay_decision(carer, prv, pay, born, today, weeks.get(carer, ()))
        for carer, prv, pay, born in found
    ]


async def sweep_slow(conn: AsyncConnection[Any], now: datetime, config: SweepConfig) -> list[AlertRecord]:
    """UNDER/OVER_DELIVERY, PROVIDER_PATTERN and PAY_BELOW_MINIMUM."""
    decisions = (
        await sweep_delivery(conn, now, config)
        + await sweep_provider_pattern(conn, now, config)
        + await sweep_pay(conn, now, config)
    )
    return await apply_decisions(conn, worth_applying(decisions, await open_subjects(conn, SLOW_KINDS)), now)
