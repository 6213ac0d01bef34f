"""store.apply_decisions: a batch's alert decisions in a few statements, leaving what one by one would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from carewatch.alerts.repository import _rounds, apply_decisions
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


LATE_NOTE = ("auto-resolved: an event that arrived late shows the condition was met before the deadline "
             "(caused by late data)")
GONE_NOTE = "auto-resolved: the condition no longer holds"


async def test_decisions_leave_what_one_by_one_would() -> None:
    # The expected figures are those of the one-by-one implementation this replaced (a statement a
    # decision), which the set-based one must keep.
    changed, rows, history = await _replay(apply_decisions)
    assert [[(a[0], a[1], a[3], a[4]) for a in c] for c in changed] == [
        [(1, "SHORT_VISIT", "S1", "open"), (2, "DOUBLE_BOOKED_CARER", "C1", "open"),
         (3, "UNKNOWN_CARER", "S2", "open"), (4, "LATE_START", "S3", "open")],
        [(4, "LATE_START", "S3", "auto_resolved"), (2, "DOUBLE_BOOKED_CARER", "C1", "auto_resolved")],
        [(5, "DOUBLE_BOOKED_CARER", "C1", "open"), (1, "SHORT_VISIT", "S1", "auto_resolved")],
        [(6, "OVERRUN", "S4", "open"), (6, "OVERRUN", "S4", "auto_resolved")],  # raised, then resolved
    ]
    first, late = changed[0][0], changed[1][0]
    assert first[6] == {"seconds": 60}  # the first raise wins; its repeat changed nothing
    assert late[5] is True and late[6] == {"resolution": {"clock_in_at": "08:20"}}
    assert [(h[0], h[2]) for h in late[10]] == [("open", "raised: LATE_START S3"), ("auto_resolved", LATE_NOTE)]
    assert [(h[0], h[2]) for h in changed[3][0][10]] == [("open", "raised: OVERRUN S4")]
    assert [(h[0], h[2]) for h in changed[3][1][10]] == [("open", "raised: OVERRUN S4"),
                                                         ("auto_resolved", GONE_NOTE)]
    assert [(r[0], r[4]) for r in rows] == [(1, "auto_resolved"), (2, "auto_resolved"), (3, "open"),
                                            (4, "auto_resolved"), (5, "open"), (6, "auto_resolved")]
    assert [(h[0], h[1]) for h in history] == [
        (1, "open"), (1, "auto_resolved"), (2, "open"), (2, "auto_resolved"), (3, "open"), (4, "open"),
        (4, "auto_resolved"), (5, "open"), (6, "open"), (6, "auto_resolved")]
    assert {h[3] for h in history} == {"carewatch"}


def test_rounds_split_only_where_one_subject_changes_direction() -> None:
    raise_a, resolve_a = d("raise", AlertKind.OVERRUN, "shift", "A"), d("resolve", AlertKind.OVERRUN, "shift", "A")
    raise_b = d("raise", AlertKind.OVERRUN, "shift", "B")
    assert _rounds([]) == []
    assert _rounds([raise_a, raise_b, raise_a]) == [[raise_a, raise_b, raise_a]]
    assert _rounds([raise_a, raise_b, resolve_a, raise_a]) == [[raise_a, raise_b], [resolve_a], [raise_a]]
