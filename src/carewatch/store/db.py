"""The one place the database is reached from: an async connection pool."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from carewatch.store.arrays import use_fast_arrays


async def _configure(conn: AsyncConnection[Any]) -> None:
    await use_fast_arrays(conn)
    # json/jsonb columns (plans, rates, attendance) decoded by orjson: the API reads many per page.
    set_json_loads(orjson.loads, conn)


def make_pool(database_url: str, *, min_size: int = 1, max_size: int = 8,
              check_on_borrow: bool = False) -> AsyncConnectionPool:
    """An unopened pool; open it with `await pool.open(wait=True)` in the owner's lifespan.

    `check_on_borrow` tries each connection before handing it out, so that one the server closed
    (PostgreSQL restarted) is replaced instead of failing the request that gets it. Lists of strings
    are dumped as array literals in one pass (store/arrays.py).
    """
    return AsyncConnectionPool(database_url, min_size=min_size, max_size=max_size, open=False,
                               kwargs={"autocommit": False}, configure=_configure,
                               check=AsyncConnectionPool.check_connection if check_on_borrow else None)
