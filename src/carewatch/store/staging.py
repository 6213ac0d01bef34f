"""Bulk rows into a session-local copy of a table by COPY, to be merged by one INSERT ... SELECT.

COPY hands psycopg's C layer whole rows; executemany or array parameters dump every value in
Python, which cost more than the database's own work for a batch of thousands of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncCursor, sql

from carewatch.store.instants import instant_text


async def stage_rows(cur: AsyncCursor[Any], staging: str, like: str, columns: Sequence[str],
                     rows: Iterable[Sequence[Any]]) -> None:
    """Replace the rows of temp table `staging` (shaped like table `like`) with `rows`.

    The table lives as long as the session and is emptied at each commit; it is also emptied
    here, since one transaction may stage several rounds.
    """
    name = sql.Identifier(staging)
    await cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS; TRUNCATE {}")
                      .format(name, sql.Identifier(like), name))
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(name, sql.SQL(", ").join(map(sql.Identifier, columns)))
    async with cur.copy(copy_sql) as copy:
        for row in rows:
            # Instants as text (store/instants.py): psycopg's datetime dumper is most of a row's cost.
            await copy.write_row([instant_text(v) if type(v) is datetime else v for v in row])
