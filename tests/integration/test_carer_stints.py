"""store/carer_attendance.carer_stints with its cache: a (carer, shift) is paired again exactly when its
rows changed, so the cached answer is always the one a fresh read gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import carewatch.store.carer_attendance as attendance
from carewatch.domain.attendance import attendance_pairs
from carewatch.domain.double_booking import Stint
from carewatch.store.carer_attendance import carer_stints
from support import make_database

pytestmark = pytest.mark.services

T = datetime(2026, 4, 20, 8, 0, tzinfo=UTC)
CLOCK = ("INSERT INTO clock_events (event_id, shift_id, carer_id, direction, at, method)"
         " VALUES (%s, %s, %s, %s, %s, 'gps')")


async def _fresh(conn: psycopg.AsyncConnection, carers: list[str]) -> dict[str, list[Stint]]:
    attendance.kept_stints.clear()
    return await carer_stints(conn, carers, T - timedelta(days=2))


async def test_stints_are_paired_once_and_again_when_a_carers_rows_change(monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_database()
    paired: list[int] = []

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        paired.append(1)
        return attendance_pairs(*args, **kwargs)

    monkeypatch.setattr(attendance, "attendance_pairs", counting)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(CLOCK, ("a1", "S1", "C1", "in", T))
        await conn.execute(CLOCK, ("a2", "S1", "C1", "out", T + timedelta(hours=1)))
        await conn.execute(CLOCK, ("b1", "S2", "C1", "in", T + timedelta(minutes=30)))
        since = T - timedelta(days=2)
        attendance.kept_stints.clear()
        first = await carer_stints(conn, ["C1", "C2"], since)
        assert first == {"C1": [Stint("S1", T, T + timedelta(hours=1)), Stint("S2", T + timedelta(minutes=30), None)],
                         "C2": []}
        assert len(paired) == 2
        assert await carer_stints(conn, ["C1", "C2"], since) == first and len(paired) == 2  # nothing changed

        # A clock-out on S2 pairs S2 again, and only S2.
        await conn.execute(CLOCK, ("b2", "S2", "C1", "out", T + timedelta(hours=2)))
        closed = await carer_stints(conn, ["C1"], since)
        assert closed["C1"][1] == Stint("S2", T + timedelta(minutes=30), T + timedelta(hours=2))
        assert len(paired) == 3 and closed == await _fresh(conn, ["C1"])

        # The same event id written again with another time (a withdrawn shift, then a new owner's
        # event): its row version differs, so it is read afresh, never taken from the cache.
        await carer_stints(conn, ["C1"], since)
        await conn.execute("DELETE FROM clock_events WHERE event_id = 'b2'")
        await conn.execute(CLOCK, ("b2", "S2", "C1", "out", T + timedelta(hours=3)))
        moved = await carer_stints(conn, ["C1"], since)
        assert moved["C1"][1] == Stint("S2", T + timedelta(minutes=30), T + timedelta(hours=3))
        assert moved == await _fresh(conn, ["C1"])

        # A correction replaces the carer's pairs on its shift.
        await conn.execute(
            "INSERT INTO visit_corrections VALUES ('k1', 'S1', 'C1', %s, %s, 'forgot', 'office', %s)",
            (T + timedelta(minutes=5), T + timedelta(minutes=50), T + timedelta(hours=4)))
        corrected = await carer_stints(conn, ["C1"], since)
        assert corrected["C1"][0] == Stint("S1", T + timedelta(minutes=5), T + timedelta(minutes=50))
        assert corrected == await _fresh(conn, ["C1"])
