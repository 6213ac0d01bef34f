"""apply_decisions_bulk (a batch's alerts in a few statements) leaves what store.apply_decisions does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from carewatch.alerts.event_alerts import apply_decisions_bulk
from carewatch.alerts.store import apply_decisions
from carewatch.domain.alert_rules import AlertDecision, AlertKind
from support import make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)


def d(action: str, kind: AlertKind, subject_type: str, subject_id: str, **more: Any) -> AlertDecision:
    return AlertDecision(action, kind, subject_type, subject_id, message=f"{kind.value} {subject_id}",  # type: ignore[arg-type]
                         shift_id=subject_id if subject_type == "shift" else None, **more)


ROUNDS = [
    [d("raise", AlertKind.SHORT_VISIT, "shift", "S1", details={"seconds": 60}),
     d("raise", AlertKind.SHORT_VISIT, "shift", "S1", details={"seconds": 99}),  # a repeat: no change
     d("raise", AlertKind.DOUBLE_BOOKED_CARER, "carer", "C1", carer_id="C1", details={"shifts": ["S1", "S2"]}),
     d("raise", AlertKind.UNKNOWN_CARER, "shift", "S2"),
     d("raise", AlertKind.LATE_START, "shift", "S3")],
    [d("resolve", AlertKind.LATE_START, "shift", "S3", late_data=True, details={"clock_in_at": "08:20"}),
     d("resolve", AlertKind.LATE_START, "shift", "S3"),  # already resolved by the line above
     d("resolve", AlertKind.DOUBLE_BOOKED_CARER, "carer", "C1"),
     d("resolve", AlertKind.MISSED_VISIT, "shift", "S9")],  # never open
    [d("raise", AlertKind.LATE_START, "shift", "S3"),  # once per subject: never again
     d("raise", AlertKind.DOUBLE_BOOKED_CARER, "carer", "C1", carer_id="C1"),  # may open again
     d("resolve", AlertKind.SHORT_VISIT, "shift", "S1")],
    [d("raise", AlertKind.OVERRUN, "shift", "S4"), d("resolve", AlertKind.OVERRUN, "shift", "S4")],  # mixed
]


async def _replay(apply: Any) -> tuple[list[Any], list[Any], list[Any]]:
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        changed = []
        for n, decisions in enumerate(ROUNDS):
            async with conn.transaction():
                alerts = await apply(conn, decisions, NOW + timedelta(minutes=n))
            changed.append([(a.id, a.kind, a.subject_type, a.subject_id, a.status, a.caused_by_late_data,
                             a.details, a.message, a.raised_at, a.resolved_at,
                             [(h.status, h.changed_at, h.note) for h in a.history]) for a in alerts])
        cur = await conn.execute("SELECT id, kind, subject_type, subject_id, status, caused_by_late_data, details,"
                                 " raised_at, resolved_at, updated_at FROM alerts ORDER BY id")
        rows = await cur.fetchall()
        cur = await conn.execute("SELECT alert_id, status, changed_at, changed_by, note FROM alert_history"
                                 " ORDER BY alert_id, id")
        history = await cur.fetchall()
    return changed, rows, history


async def test_bulk_decisions_match_one_by_one() -> None:
    one_by_one = await _replay(apply_decisions)
    bulk = await _replay(apply_decisions_bulk)
    assert bulk == one_by_one
    changed, rows, _ = bulk
    assert [len(c) for c in changed] == [4, 2, 2, 2]
    assert [r[4] for r in rows].count("open") == 2  # UNKNOWN_CARER S2, DOUBLE_BOOKED_CARER C1 reopened
