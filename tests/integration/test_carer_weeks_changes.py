"""store/carer_weeks.refresh_carer_weeks says which carers' weeks moved, so that effective pay is judged
for those alone (pipeline/pay.py): a week recomputed to what it was is neither rewritten nor judged."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from carewatch.pipeline.batch import apply_batch
from carewatch.store.carer_weeks import refresh_carer_weeks
from support import care_event, make_database

pytestmark = pytest.mark.services

NOW = datetime(2026, 4, 20, 12, 0, tzinfo=UTC)
MONDAY = date(2026, 4, 13)


VISIT = {"shift_id": "SH", "package_id": "PKG", "provider_id": "PRV"}
SETUP = [
    care_event("c", "commissioner.registered", "2026-04-01T08:00:00Z", commissioner_id="LA", name="LA"),
    care_event("p", "provider.registered", "2026-04-01T08:00:00Z", provider_id="PRV", name="PRV"),
    care_event("k", "carer.registered", "2026-04-01T08:00:00Z", carer_id="CR", provider_id="PRV",
           pay_pence_per_hour=1400),
    care_event("pkg", "package.approved", "2026-04-01T08:00:00Z", package_id="PKG", commissioner_id="LA",
           provider_id="PRV", person={"person_id": "P", "nhs_number": "9434765919"}, period_start="2026-04-01",
           period_end="2026-06-30", budget_pence=10_000_000, contingency_pence=10_000,
           plan=[{"service_type": "personal_care", "minutes_per_week": 420, "carers": 1}],
           rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 1800}]),
    care_event("s", "shift.scheduled", "2026-04-10T08:00:00Z", starts_at="2026-04-14T08:00:00Z",
           ends_at="2026-04-14T09:00:00Z", service_type="personal_care", **VISIT),
]
CLOCK_IN = care_event("i", "visit.clock_in", "2026-04-14T08:00:00Z", carer_id="CR", method="nfc", **VISIT)
CLOCK_OUT = care_event("o", "visit.clock_out", "2026-04-14T09:00:00Z", carer_id="CR", method="nfc", **VISIT)


async def test_only_carers_whose_weeks_moved_are_returned() -> None:
    url = make_database()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_batch(conn, [*SETUP, CLOCK_IN], NOW)
        week = [("CR", MONDAY)]
        async with conn.transaction():
            assert await refresh_carer_weeks(conn, week) == set()  # the batch wrote the week: unchanged
        await apply_batch(conn, [CLOCK_OUT], NOW)
        cur = await conn.execute("SELECT direct_seconds FROM carer_week_time WHERE carer_id = 'CR'"
                                 " AND week_start = %s", (MONDAY,))
        assert await cur.fetchone() == (3600,)
        async with conn.transaction():
            assert await refresh_carer_weeks(conn, week) == set()
            await conn.execute("UPDATE carer_week_time SET direct_seconds = 0")  # stale by hand
            assert await refresh_carer_weeks(conn, week) == {"CR"}  # recomputed: it moved back
            assert await refresh_carer_weeks(conn, [("CR", date(2026, 4, 20))]) == {"CR"}  # a new week
