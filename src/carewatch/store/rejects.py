"""Recording rejected input in rejected_events, once per (event, stage, raw text)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from carewatch.schema.events import Rejection

# The unique index covers rows with an event_id; NOT EXISTS also keeps replays of input with
# no event_id (not JSON at all) from piling up.
_INSERT = """
INSERT INTO rejected_events (event_id, event_type, stage, reason, raw, source, rejected_at)
SELECT %(event_id)s::text, %(event_type)s::text, %(stage)s::text, %(reason)s::text, %(raw)s::text,
       %(source)s::text, %(at)s::timestamptz
WHERE NOT EXISTS (SELECT 1 FROM rejected_events
                  WHERE event_id IS NOT DISTINCT FROM %(event_id)s::text AND stage = %(stage)s::text
                    AND md5(raw) = md5(%(raw)s::text))
ON CONFLICT DO NOTHING"""


def storable(text: str) -> str:
    """PostgreSQL text cannot hold NUL; keep everything else exactly as received."""
    return text.replace("\x00", "\ufffd")


async def record_rejections(conn: AsyncConnection[Any], rejections: Sequence[Rejection], source: str,
                            now: datetime) -> None:
    if not rejections:
        return
    params = [
        {"event_id": storable(r.event_id) if r.event_id is not None else None,
         "event_type": storable(r.event_type) if r.event_type is not None else None,
         "stage": r.stage, "reason": storable(r.reason), "raw": storable(r.raw), "source": source, "at": now}
        for r in rejections
    ]
    async with conn.cursor() as cur:
        await cur.executemany(_INSERT, params)
