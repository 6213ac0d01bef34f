"""A carer's attendance on every shift (any provider), read by carer and event time.

Double booking reads two days of attendance of every carer a batch names, every batch, although
nearly all of it was read, and paired, by the batch before (issue 12: 6% of the worker's CPU, most
of it turning rows into clock events and pairing them). Clock events and corrections are written
once and never changed (a withdrawn shift's are deleted), so a carer's stints on one shift follow
from which rows there are. Each (carer, shift) is first read as a fingerprint, its rows' event ids
and row versions (`xmin`, the writing transaction's id, unique across the cluster), and its stints
are kept under it; only the pairs not seen in that state are read in full and paired again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.attendance import attendance_pairs
from carewatch.domain.double_booking import Stint
from carewatch.domain.model import ClockEvent, Correction
from carewatch.store.kept import Kept, database_of

STINTS_KEPT = 200_000

# The (carer, shift) pairs whose stints can be in the window: the carers' clock events on the shifts
# where they have one from `since` on, or a correction (a pair that began before `since` is read
# whole, not as a lone clock-out), each pair with the ids and row versions of its rows.
_CLOCK_STATES = """
SELECT carer_id, shift_id, string_agg(event_id || ':' || xmin::text, ',' ORDER BY event_id COLLATE "C")
FROM clock_events WHERE carer_id = ANY(%(carers)s) AND (shift_id = ANY(%(shifts)s) OR shift_id IN (
    SELECT shift_id FROM clock_events WHERE carer_id = ANY(%(carers)s) AND at >= %(since)s))
GROUP BY carer_id, shift_id"""

_CLOCKS = """
SELECT c.event_id, c.shift_id, c.carer_id, c.direction, c.at, c.method, c.xmin::text FROM clock_events c
JOIN unnest(%s::text[], %s::text[]) AS p(carer_id, shift_id) USING (carer_id, shift_id)"""

_CORRECTIONS = """
SELECT event_id, shift_id, carer_id, clock_in_at, clock_out_at, occurred_at, reason_code, corrected_by, xmin::text
FROM visit_corrections WHERE carer_id = ANY(%(carers)s) AND clock_out_at >= %(since)s"""

# The database (host, port, name: xmin is unique within one cluster), carer, shift, the state of its
# clock events and of its corrections.
StintKey = tuple[str, str, str, str, str]
kept_stints: Kept[StintKey, tuple[Stint, ...]] = Kept(STINTS_KEPT)


def _state(rows: list[tuple[str, str]]) -> str:
    """Event ids and row versions, as _CLOCK_STATES writes them."""
    return ",".join(f"{event_id}:{version}" for event_id, version in sorted(rows))


async def carer_stints(conn: AsyncConnection[Any], carer_ids: Collection[str],
                       since: datetime) -> dict[str, list[Stint]]:
    """Each carer's attendance intervals from `since` on, one per attendance pair (domain/attendance)."""
    if not carer_ids:
        return {}
    params: dict[str, Any] = {"carers": sorted(carer_ids), "since": since}
    database = database_of(conn)
    corrections: dict[tuple[str, str], list[Correction]] = defaultdict(list)
    correction_rows: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    async with conn.cursor() as cur:
        await cur.execute(_CORRECTIONS, params)
        for eid, sid, carer, cin, cout, occurred, reason, by, version in await cur.fetchall():
            corrections[(carer, sid)].append(Correction(eid, sid, carer, cin.astimezone(UTC),
                                                        cout.astimezone(UTC), occurred.astimezone(UTC),
                                                        reason, by))
            correction_rows[(carer, sid)].append((eid, version))
        await cur.execute(_CLOCK_STATES, params | {"shifts": sorted({s for _, s in corrections})})
        states: dict[tuple[str, str], str] = {(carer, sid): state for carer, sid, state in await cur.fetchall()}
        pairs = sorted(set(states) | set(corrections))
        fixed = {pair: _state(correction_rows[pair]) for pair in corrections}
        found: dict[tuple[str, str], tuple[Stint, ...]] = {}
        missing: list[tuple[str, str]] = []
        for pair in pairs:
            kept = kept_stints.get((database, *pair, states.get(pair, ""), fixed.get(pair, "")))
            if kept is None:
                missing.append(pair)
            else:
                found[pair] = kept
        clocks: dict[tuple[str, str], dict[str, ClockEvent]] = defaultdict(dict)
        versions: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        if missing:
            await cur.execute(_CLOCKS, ([c for c, _ in missing], [s for _, s in missing]))
            for eid, sid, carer, direction, at, method, version in await cur.fetchall():
                clocks[(carer, sid)][eid] = ClockEvent(eid, sid, carer, direction, at.astimezone(UTC), method)
                versions[(carer, sid)].append((eid, version))
    for pair in missing:
        carer, sid = pair
        made = tuple(Stint(sid, p.clock_in_at, p.clock_out_at)
                     for p in attendance_pairs(clocks[pair].values(), corrections[pair]))
        # Kept under the rows actually read (a clock event committed between the two reads is in them).
        kept_stints.put((database, carer, sid, _state(versions[pair]), fixed.get(pair, "")), made)
        found[pair] = made
    stints: dict[str, list[Stint]] = {c: [] for c in carer_ids}
    for carer, sid in pairs:
        stints[carer].extend(found[(carer, sid)])
    return stints
