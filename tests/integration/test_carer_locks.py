"""A batch's carers are locked until its commit: a registration and a clock-in applied at once take turns."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from carewatch.store.people import lock_carers

pytestmark = pytest.mark.services


async def test_a_second_transaction_naming_the_same_carer_waits_for_the_first_to_commit(
        fresh_database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_database_url) as first, \
            await psycopg.AsyncConnection.connect(fresh_database_url) as second:
        async with first.transaction():
            await lock_carers(first, {"CR-1", "CR-2"})
            async with second.transaction():
                await asyncio.wait_for(lock_carers(second, {"CR-3"}), 5)  # another carer: no wait
            waiting = asyncio.ensure_future(_locked(second, {"CR-2", "CR-9"}))
            await asyncio.sleep(0.5)
            assert not waiting.done()  # CR-2 is the first transaction's until it ends
        assert await asyncio.wait_for(waiting, 5) == "locked"


async def _locked(conn: psycopg.AsyncConnection[tuple[object, ...]], carers: set[str]) -> str:
    async with conn.transaction():
        await lock_carers(conn, carers)
    return "locked"
