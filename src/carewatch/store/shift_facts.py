"""Everything stored about a set of shifts, read in one go.

The pipeline reads a batch's shifts' facts once: the ledger rebuild and the visit alert rules
(domain/visits.py) both start from them. The sweeps read them too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection

from carewatch.domain.model import ClockEvent, Correction, Location, Rate, Shift, ShiftFacts

_SHIFTS = """
SELECT s.shift_id, s.package_id, s.provider_id, s.starts_at, s.ends_at, s.service_type, s.carers_required,
       s.carer_ids, s.required_competencies, s.cancelled_by, s.cancelled_at, p.commissioner_id, p.rates::text,
       c.timezone, p.thresholds, ct.thresholds
FROM shifts s
LEFT JOIN packages p ON p.package_id = s.package_id
LEFT JOIN commissioners c ON c.commissioner_id = p.commissioner_id
LEFT JOIN commissioner_thresholds ct ON ct.commissioner_id = p.commissioner_id
WHERE s.shift_id = ANY(%s)
ORDER BY s.shift_id"""
_LOCKED = " FOR UPDATE OF s"

_CLOCKS = """
SELECT event_id, shift_id, carer_id, direction, at, method, lat, lon, accuracy_m
FROM clock_events WHERE shift_id = ANY(%s)"""

_CORRECTIONS = """
SELECT event_id, shift_id, carer_id, clock_in_at, clock_out_at, occurred_at, reason_code, corrected_by
FROM visit_corrections WHERE shift_id = ANY(%s)
ORDER BY occurred_at, event_id"""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


@lru_cache(maxsize=4096)
def _rates(text: str | None) -> tuple[Rate, ...]:
    """A package's rates from their jsonb text, parsed once per distinct value: every shift of a
    package carries the same rates, and decoding them row by row showed in the worker's profile."""
    raw = json.loads(text) if text else None
    return tuple(Rate(r["service_type"], r["band"], int(r["pence_per_hour"])) for r in (raw or []))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


async def load_shift_facts(conn: AsyncConnection[Any], shift_ids: Collection[str], *,
                           lock: bool = False) -> dict[str, ShiftFacts]:
    """The facts of each named shift that exists, by shift id (three queries in all); with `lock`, the
    shift rows stay locked until the caller's transaction ends, taken in shift id order."""
    if not shift_ids:
        return {}
    ids = sorted(shift_ids)
    clocks: dict[str, list[ClockEvent]] = defaultdict(list)
    corrections: dict[str, list[Correction]] = defaultdict(list)
    async with conn.cursor() as cur:
        await cur.execute(_SHIFTS + _LOCKED if lock else _SHIFTS, (ids,))
        shift_rows = await cur.fetchall()
        await cur.execute(_CLOCKS, (ids,))
        for eid, sid, carer, direction, at, method, lat, lon, acc in await cur.fetchall():
            location = Location(lat, lon, acc or 0.0) if lat is not None and lon is not None else None
            clocks[sid].append(ClockEvent(eid, sid, carer, direction, _utc(at), method, location))
        await cur.execute(_CORRECTIONS, (ids,))
        for eid, sid, carer, cin, cout, occurred, reason, by in await cur.fetchall():
            corrections[sid].append(Correction(eid, sid, carer, _utc(cin), _utc(cout), _utc(occurred),
                                               reason, by))
    facts: dict[str, ShiftFacts] = {}
    for (sid, package_id, provider_id, starts, ends, service_type, required, carer_ids, competencies,
         cancelled_by, cancelled_at, commissioner_id, rates, tz, package_th, commissioner_th) in shift_rows:
        shift = Shift(sid, package_id, provider_id, _utc(starts), _utc(ends), service_type, required,
                      tuple(carer_ids), tuple(competencies), cancelled_by)
        facts[sid] = ShiftFacts(shift, _rates(rates), tz, commissioner_id,
                                _utc(cancelled_at) if cancelled_at else None,
                                _mapping(package_th), _mapping(commissioner_th),
                                tuple(clocks[sid]), tuple(corrections[sid]))
    return facts
