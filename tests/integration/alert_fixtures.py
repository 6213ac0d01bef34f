"""Rows for the alert tests, written straight to the tables the worker fills (no Kafka needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

START = datetime(2026, 4, 6, 7, 0, tzinfo=UTC)


def add_package(
    conn: psycopg.Connection[Any],
    package_id: str = "PKG-1",
    *,
    provider_id: str = "PRV-1",
    commissioner_id: str = "LA-1",
    thresholds: dict[str, Any] | None = None,
    planned_minutes_per_week: int = 1050,
    period_start: date = date(2026, 3, 1),
) -> None:
    conn.execute(
        """INSERT INTO packages (package_id, commissioner_id, provider_id, mechanism, person_id, nhs_number,
                                 person_lat, person_lon, period_start, period_end, budget_pence,
                                 contingency_pence, plan, rates, thresholds, planned_minutes_per_week,
                                 approved_at)
           VALUES (%s, %s, %s, 'ISF', 'P-1', '9434765919', 53.4098, -3.0456, %s, '2027-03-31', 3500000,
                   150000, '[]', '[]', %s, %s, '2026-02-01T00:00:00Z')""",
        (
            package_id,
            commissioner_id,
            provider_id,
            period_start,
            Jsonb(thresholds or {}),
            planned_minutes_per_week,
        ),
    )


def add_shift(
    conn: psycopg.Connection[Any],
    shift_id: str,
    *,
    package_id: str = "PKG-1",
    provider_id: str = "PRV-1",
    starts_at: datetime = START,
    minutes: int = 30,
    carers_required: int = 1,
) -> None:
    conn.execute(
        """INSERT INTO shifts (shift_id, package_id, provider_id, starts_at, ends_at, service_type,
                               carers_required, scheduled_at)
           VALUES (%s, %s, %s, %s, %s, 'personal_care', %s, %s)""",
        (
            shift_id,
            package_id,
            provider_id,
            starts_at,
            starts_at + timedelta(minutes=minutes),
            carers_required,
            starts_at - timedelta(days=1),
        ),
    )


def clock(
    conn: psycopg.Connection[Any], event_id: str, shift_id: str, carer_id: str, direction: str, at: datetime
) -> None:
    conn.execute(
        "INSERT INTO clock_events (event_id, shift_id, carer_id, direction, at, method) "
        "VALUES (%s, %s, %s, %s, %s, 'nfc')",
        (event_id, shift_id, carer_id, direction, at),
    )


def alerts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(kind, subject_id, status, caused_by_late_data) of every alert, oldest first."""
    return conn.execute(
        "SELECT kind, subject_id, status, caused_by_late_data FROM alerts ORDER BY id"
    ).fetchall()
