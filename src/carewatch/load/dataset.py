"""The load test's data set: a simulated feed applied straight through the pipeline, and a token per role.

The feed is `carewatch simulate`'s (the same generator and options); applying it with the pipeline's
`apply_batch` in large batches, rather than through Kafka and a worker, gives the same rows in a
fraction of the time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from carewatch.pipeline.batch import apply_batch
from carewatch.schema.events import CareEvent, validate_event
from carewatch.schema.migrate import drop_database, ensure_database, migrate
from carewatch.security.tokens import create_token
from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import FeedOptions
from carewatch.simulator.sinks import encode

# A fixed Monday (as the worker benchmark's), so every run loads the same rows.
LOAD_START = datetime(2026, 4, 6, 5, 0, tzinfo=UTC)
BATCH = 2000


@dataclass(frozen=True)
class DataSet:
    database_url: str
    now: datetime  # the API's processing clock: the end of the simulated days
    commissioner_id: str
    provider_id: str
    package_id: str
    tokens: dict[str, str]  # role -> secret: commissioner, provider, admin


def feed_options(packages: int, providers: int, days: float, seed: int) -> FeedOptions:
    return FeedOptions(start=LOAD_START, seed=seed, packages=packages, providers=providers, days=days, invoices=0)


async def _apply(database_url: str, options: FeedOptions) -> int:
    events: list[CareEvent] = []
    for raw in generate_feed(options):
        checked = validate_event(encode(raw))
        if isinstance(checked, CareEvent):
            events.append(checked)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for i in range(0, len(events), BATCH):
            chunk = events[i:i + BATCH]
            await apply_batch(conn, chunk, chunk[-1].occurred_at)
    return len(events)


async def _has_data(database_url: str) -> bool:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM packages")).fetchone()
        return bool(row and row[0])


async def _tokens_and_subjects(database_url: str) -> tuple[str, str, str, dict[str, str]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        commissioner = await (await conn.execute(
            "SELECT commissioner_id FROM packages GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).fetchone()
        provider = await (await conn.execute(
            "SELECT provider_id FROM shifts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).fetchone()
        package = await (await conn.execute(
            "SELECT package_id FROM shift_ledger GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).fetchone()
        assert commissioner and provider and package, "the data set has no packages or shifts"
        tokens = {
            "commissioner": (await create_token(conn, "commissioner", commissioner[0], "api-load")).secret,
            "provider": (await create_token(conn, "provider", provider[0], "api-load")).secret,
            "admin": (await create_token(conn, "admin", None, "api-load")).secret,
        }
        await conn.commit()
    return commissioner[0], provider[0], package[0], tokens


def build(database_url: str, options: FeedOptions, *, rebuild: bool) -> DataSet:
    """Migrate, load the feed unless the database already holds one, and make fresh tokens."""
    if rebuild:
        drop_database(database_url)
    ensure_database(database_url)
    migrate(database_url)
    if not asyncio.run(_has_data(database_url)):
        started = datetime.now(UTC)
        n = asyncio.run(_apply(database_url, options))
        seconds = (datetime.now(UTC) - started).total_seconds()
        print(f"api-load: applied {n:,} simulated events in {seconds:.0f} s", flush=True)
    else:
        print("api-load: the database already holds a data set (pass --rebuild to make it again)", flush=True)
    commissioner, provider, package, tokens = asyncio.run(_tokens_and_subjects(database_url))
    return DataSet(database_url, options.start + timedelta(days=options.days), commissioner, provider,
                   package, tokens)
