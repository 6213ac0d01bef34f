"""The commissioners involved in carer- and provider-level alerts (domain/audience.py says which)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.audience import Involvement

_OF_SHIFTS = """
SELECT DISTINCT s.shift_id, p.commissioner_id FROM shifts s JOIN packages p ON p.package_id = s.package_id
WHERE s.shift_id = ANY(%s)"""

# A carer attended a package in a window when they clocked in (or were corrected in) on its shift then.
_OF_CARERS = """
SELECT DISTINCT q.n, p.commissioner_id
FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[]) WITH ORDINALITY AS q(carer, lo, hi, n)
JOIN LATERAL (
    SELECT c.shift_id FROM clock_events c
    WHERE c.carer_id = q.carer AND c.direction = 'in' AND c.at >= q.lo AND c.at < q.hi
    UNION
    SELECT v.shift_id FROM visit_corrections v
    WHERE v.carer_id = q.carer AND v.clock_in_at >= q.lo AND v.clock_in_at < q.hi
) attended ON true
JOIN shifts s ON s.shift_id = attended.shift_id
JOIN packages p ON p.package_id = s.package_id"""

_OF_PROVIDERS = "SELECT DISTINCT provider_id, commissioner_id FROM packages WHERE provider_id = ANY(%s)"


async def commissioners_involved(conn: AsyncConnection[Any],
                                 wanted: Sequence[Involvement]) -> list[tuple[str, ...]]:
    """For each involvement, in order, the commissioners it names (sorted)."""
    found: list[set[str]] = [set() for _ in wanted]
    shifts = sorted({s for w in wanted for s in w.shift_ids})
    if shifts:
        cur = await conn.execute(_OF_SHIFTS, (shifts,))
        by_shift: dict[str, set[str]] = {}
        for sid, com in await cur.fetchall():
            by_shift.setdefault(str(sid), set()).add(str(com))
        for i, w in enumerate(wanted):
            for sid in w.shift_ids:
                found[i] |= by_shift.get(sid, set())
    windows = [(i, w) for i, w in enumerate(wanted)
               if w.carer_id is not None and not w.shift_ids and w.start is not None and w.end is not None]
    if windows:
        cur = await conn.execute(_OF_CARERS, ([w.carer_id for _, w in windows], [w.start for _, w in windows],
                                              [w.end for _, w in windows]))
        for n, com in await cur.fetchall():
            found[windows[int(n) - 1][0]].add(str(com))
    providers = sorted({w.provider_id for w in wanted if w.provider_id is not None})
    if providers:
        cur = await conn.execute(_OF_PROVIDERS, (providers,))
        by_provider: dict[str, set[str]] = {}
        for prv, com in await cur.fetchall():
            by_provider.setdefault(str(prv), set()).add(str(com))
        for i, w in enumerate(wanted):
            if w.provider_id is not None:
                found[i] |= by_provider.get(w.provider_id, set())
    return [tuple(sorted(f)) for f in found]
