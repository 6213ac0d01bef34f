"""store/instants.py: aware datetimes written by instant_text reach PostgreSQL as the same timestamptz as
through psycopg's own dumper, in COPY rows staged by store/staging.py and as text parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from carewatch.store.instants import instant_text
from carewatch.store.staging import stage_rows

pytestmark = pytest.mark.services

LONDON = ZoneInfo("Europe/London")
INSTANTS = [
    datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
    datetime(2026, 3, 7, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC),  # a fraction of a second: str()
    datetime(2026, 10, 25, 1, 30, tzinfo=LONDON),
    datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=LONDON),  # the second 01:30 of the autumn change
    datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),  # before the epoch
    datetime(1, 1, 1, 12, 0, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def test_the_text_names_the_instant_in_utc() -> None:
    assert instant_text(datetime(2026, 3, 7, 5, 17, 23, tzinfo=UTC)) == "2026-03-07 05:17:23+00"
    assert instant_text(datetime(2026, 7, 1, 9, 0, tzinfo=LONDON)) == "2026-07-01 08:00:00+00"
    assert instant_text(INSTANTS[2]) == str(INSTANTS[2])


def test_the_server_reads_the_same_instants_as_from_psycopgs_dumper(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for at in INSTANTS:
            got = conn.execute("SELECT %s::timestamptz, %s::timestamptz", (instant_text(at), at)).fetchone()
            assert got is not None and got[0] == got[1] and got[0].timestamp() == at.timestamp()


async def test_staged_rows_keep_their_instants(database_url: str) -> None:
    naive = datetime(2026, 1, 1, 12, 0)  # a timestamptz column reads it in the session's zone, as before
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.cursor() as cur:
        await cur.execute("CREATE TEMP TABLE copied_from (n int, at timestamptz, label text)")
        await stage_rows(cur, "copied", "copied_from", ("n", "at", "label"),
                         [(n, at, at and str(at)) for n, at in enumerate([*INSTANTS, naive, None])])
        rows = await (await cur.execute("SELECT at, at = label::timestamptz FROM copied ORDER BY n")).fetchall()
        assert [r[0] and r[0].timestamp() for r in rows[:-2]] == [at.timestamp() for at in INSTANTS]
        assert all(same for _, same in rows[:-1]) and rows[-1] == (None, None)
