"""A carer's attendance on every shift (any provider), read by carer and event time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.attendance import attendance_pairs
from carewatch.domain.double_booking import Stint
from carewatch.domain.model import ClockEvent, Correction

# Every clock event of the carers on the shifts where they have one from `since` on (or a
# correction): a pair that began before `since` is read whole, not as a lone clock-out.
_CLOCKS = """
SELECT event_id, shift_id, carer_id, direction, at, method FROM clock_events
WHERE carer_id = ANY(%(carers)s) AND (shift_id = ANY(%(shifts)s) OR shift_id IN (
    SELECT shift_id FROM clock_events WHERE carer_id = ANY(%(carers)s) AND at >= %(since)s))"""

_CORRECTIONS = """
SELECT event_id, shift_id, carer_id, clock_in_at, clock_out_at, occurred_at, reason_code, corrected_by
FROM visit_corrections WHERE carer_id = ANY(%(carers)s) AND clock_out_at >= %(since)s"""


async def carer_stints(conn: AsyncConnection[Any], carer_ids: Collection[str],
                       since: datetime) -> dict[str, list[Stint]]:
    """Each carer's attendance intervals from `since` on, one per attendance pair (domain/attendance)."""
    if not carer_ids:
        return {}
    params: dict[str, Any] = {"carers": sorted(carer_ids), "since": since}
    clocks: dict[tuple[str, str], dict[str, ClockEvent]] = defaultdict(dict)
    corrections: dict[tuple[str, str], list[Correction]] = defaultdict(list)
    async with conn.cursor() as cur:
        await cur.execute(_CORRECTIONS, params)
        for eid, sid, carer, cin, cout, occurred, reason, by in await cur.fetchall():
            corrections[(carer, sid)].append(Correction(eid, sid, carer, cin.astimezone(UTC),
                                                        cout.astimezone(UTC), occurred.astimezone(UTC),
                                                        reason, by))
        await cur.execute(_CLOCKS, params | {"shifts": sorted({s for _, s in corrections})})
        rows = await cur.fetchall()
    for eid, sid, carer, direction, at, method in rows:
        clocks[(carer, sid)][eid] = ClockEvent(eid, sid, carer, direction, at.astimezone(UTC), method)
    stints: dict[str, list[Stint]] = {c: [] for c in carer_ids}
    for carer, sid in sorted(set(clocks) | set(corrections)):
        for pair in attendance_pairs(clocks[(carer, sid)].values(), corrections[(carer, sid)]):
            stints[carer].append(Stint(sid, pair.clock_in_at, pair.clock_out_at))
    return stints
