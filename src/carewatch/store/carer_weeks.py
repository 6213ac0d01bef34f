"""Each carer's direct and non-direct time per ISO week (carer_week_time), for effective pay.

A week's row is recomputed from every stored fact (the carer's attendance in the ledgers of shifts
starting that week, their activities logged that week), never adjusted, so arrival order and
replays give the same rows. Weeks are local (the shift's and the activity's `local_date`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from fractions import Fraction
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.effective_pay import CarerWeek
from carewatch.store.people import lock_carers

# Two workers recomputing one carer's week take turns (the carer's transaction-scoped lock, the one the
# batch's alert rules take: store/people.lock_carers), so the later one reads the earlier one's committed
# facts. One lock per carer, not per carer-week: PostgreSQL's lock table is shared by every session and
# sized max_locks_per_transaction x max_connections (6,400 by default), and a batch naming a thousand
# carers over three weeks each would take a good part of it (docs/throughput.md, "Fourth pass").

# Shifts a carer attended that may start in the week: found by their clock events and corrections
# (indexed by carer and time) within two days either side, then kept if the shift starts in it.
_REFRESH = """
WITH want AS (
    SELECT * FROM unnest(%(carers)s::text[], %(weeks)s::date[]) AS w(carer_id, week_start)
), attended AS (
    SELECT DISTINCT w.carer_id, w.week_start, s.shift_id
    FROM want w
    CROSS JOIN LATERAL (
        SELECT c.shift_id FROM clock_events c
        WHERE c.carer_id = w.carer_id AND c.at >= (w.week_start - 2)::timestamptz
          AND c.at < (w.week_start + 9)::timestamptz
        UNION
        SELECT v.shift_id FROM visit_corrections v
        WHERE v.carer_id = w.carer_id AND v.clock_in_at >= (w.week_start - 2)::timestamptz
          AND v.clock_in_at < (w.week_start + 9)::timestamptz
    ) s
), direct AS (
    SELECT a.carer_id, a.week_start,
           sum(greatest(0, extract(epoch FROM (p->>'clockOutAt')::timestamptz - (p->>'clockInAt')::timestamptz)))
               AS seconds
    FROM attended a
    JOIN shift_ledger l ON l.shift_id = a.shift_id
    CROSS JOIN LATERAL jsonb_array_elements(l.attendance) p
    WHERE l.local_date >= a.week_start AND l.local_date < a.week_start + 7
      AND p->>'carerId' = a.carer_id AND p->>'clockOutAt' IS NOT NULL
    GROUP BY a.carer_id, a.week_start
), logged AS (
    SELECT w.carer_id, w.week_start, sum(x.minutes) AS minutes
    FROM want w JOIN activities x
      ON x.carer_id = w.carer_id AND x.local_date >= w.week_start AND x.local_date < w.week_start + 7
    GROUP BY w.carer_id, w.week_start
)
INSERT INTO carer_week_time (carer_id, week_start, direct_seconds, non_direct_minutes)
SELECT w.carer_id, w.week_start, coalesce(d.seconds, 0)::bigint, coalesce(g.minutes, 0)
FROM want w LEFT JOIN direct d USING (carer_id, week_start) LEFT JOIN logged g USING (carer_id, week_start)
ORDER BY w.carer_id, w.week_start
ON CONFLICT (carer_id, week_start) DO UPDATE
SET direct_seconds = EXCLUDED.direct_seconds, non_direct_minutes = EXCLUDED.non_direct_minutes
WHERE (carer_week_time.direct_seconds, carer_week_time.non_direct_minutes)
      IS DISTINCT FROM (EXCLUDED.direct_seconds, EXCLUDED.non_direct_minutes)
RETURNING carer_id"""


async def refresh_carer_weeks(conn: AsyncConnection[Any], weeks: Collection[tuple[str, date]]) -> set[str]:
    """Recompute these (carer, Monday) rows from the stored facts; returns the carers one of whose
    weeks is new or changed (a row recomputed to what it was is left as it is)."""
    wanted = sorted(set(weeks))
    if not wanted:
        return set()
    await lock_carers(conn, {carer for carer, _ in wanted})
    cur = await conn.execute(_REFRESH, {"carers": [c for c, _ in wanted], "weeks": [w for _, w in wanted]})
    return {carer for (carer,) in await cur.fetchall()}


async def carer_weeks(conn: AsyncConnection[Any], carer_ids: Collection[str]) -> dict[str, list[CarerWeek]]:
    """Every stored week of these carers, oldest first."""
    cur = await conn.execute(
        "SELECT carer_id, week_start, direct_seconds, non_direct_minutes FROM carer_week_time"
        " WHERE carer_id = ANY(%s) ORDER BY carer_id, week_start", (sorted(carer_ids),))
    found: dict[str, list[CarerWeek]] = {c: [] for c in carer_ids}
    for carer, monday, direct, minutes in await cur.fetchall():
        found[carer].append(CarerWeek(carer, monday, int(direct), Fraction(minutes)))
    return found


async def carer_pay(conn: AsyncConnection[Any], carer_ids: Collection[str]
                    ) -> dict[str, tuple[str, int, date | None]]:
    """(provider, pay pence per hour, date of birth) of each registered carer among these."""
    cur = await conn.execute(
        "SELECT carer_id, provider_id, pay_pence_per_hour, date_of_birth FROM carers WHERE carer_id = ANY(%s)",
        (sorted(carer_ids),))
    return {c: (p, int(pay), born) for c, p, pay, born in await cur.fetchall()}
