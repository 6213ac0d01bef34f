"""PostgreSQL's CPU per event on the worker's batch path, in process (docs/throughput.md, "PostgreSQL").

No Kafka, no faust: `BatchProcessor.handle` over the bench's simulated events (carewatch.bench.bench_feed)
on a fresh migrated database, in batches as the worker takes them, one connection. The backend's CPU
time comes from /proc/<backend pid>/stat, so this must run on the database's host.

    .venv/bin/python ops/pg_profile.py --events 20000 --runs 3            # CPU per event, medians
    .venv/bin/python ops/pg_profile.py --statements                      # + backend CPU by statement
    .venv/bin/python ops/pg_profile.py --functions                       # + trigger and SQL function time
    .venv/bin/python ops/pg_profile.py --explain FILE                    # auto_explain of every statement

`--statements` turns on log_statement_stats in the session and reads the backend's own getrusage
figures for each statement (bind and execute, or a simple query) from the notices; nested statements
(triggers) count in the statement that fired them. `--functions` sets track_functions = 'all' and
prints pg_stat_user_functions (wall time, self and total). Both cost a little themselves; compare
CPU per event only between runs made the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor

from carewatch.bench import BENCH_START, bench_feed, cpu_seconds
from carewatch.clock import FixedClock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.schema import migrate as migrate_module
from carewatch.schema.migrate import Migration, drop_database, ensure_database, migrate, with_database
from carewatch.store.db import make_pool

BASE_URL = os.environ.get("CAREWATCH_DATABASE_URL", "").strip() or "postgresql://postgres@127.0.0.1:5432/carewatch"
NOW = BENCH_START + timedelta(days=1, hours=2)  # just after the simulated day, as `carewatch bench` sets it
_USAGE = re.compile(r"([0-9.]+) s user, ([0-9.]+) s system")

KEEP = False  # --keep: leave the database for a closer look
_label: list[str] = ["(none)"]
_cpu_by_label: dict[str, float] = defaultdict(float)
_calls_by_label: dict[str, int] = defaultdict(int)
_explains: list[str] = []


def _short(query: Any) -> str:
    text = query.as_string(None) if hasattr(query, "as_string") else str(query)
    if isinstance(query, bytes):
        text = query.decode()
    return " ".join(text.split())[:150]


def _instrument() -> None:
    """Name each statement the pipeline runs, so that the backend's notices can be charged to it."""
    execute, executemany, copy = AsyncCursor.execute, AsyncCursor.executemany, AsyncCursor.copy

    async def _execute(self: AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        _label[0] = _short(query)
        _calls_by_label[_label[0]] += 1
        return await execute(self, query, *args, **kwargs)

    async def _executemany(self: AsyncCursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        _label[0] = "executemany: " + _short(query)
        _calls_by_label[_label[0]] += 1
        return await executemany(self, query, *args, **kwargs)

    def _copy(self: AsyncCursor[Any], statement: Any, *args: Any, **kwargs: Any) -> Any:
        _label[0] = _short(statement)
        _calls_by_label[_label[0]] += 1
        return copy(self, statement, *args, **kwargs)

    AsyncCursor.execute = _execute  # type: ignore[method-assign]
    AsyncCursor.executemany = _executemany  # type: ignore[method-assign]
    AsyncCursor.copy = _copy  # type: ignore[method-assign]


def _on_notice(diag: psycopg.errors.Diagnostic) -> None:
    text = f"{diag.message_primary or ''}\n{diag.message_detail or ''}"
    if "STATISTICS" in (diag.message_primary or ""):
        found = _USAGE.search(text)
        if found:
            _cpu_by_label[_label[0]] += float(found.group(1)) + float(found.group(2))
    elif "duration:" in (diag.message_primary or ""):
        _explains.append(f"-- {_label[0]}\n{diag.message_primary}")


async def _dead_letters(key: bytes | None, value: bytes) -> None:
    return None


_ALL_CORE = migrate_module.core_migrations


def _core_up_to(last: str | None) -> None:
    """Migrate only up to `last` (a version prefix such as 006) for the "before" side of an A/B."""

    def wanted() -> list[Migration]:
        return [m for m in _ALL_CORE() if last is None or m.version[: len(last)] <= last]

    migrate_module.core_migrations = wanted


async def one_run(
    events: int, batch: int, *, statements: bool, functions: bool, explain: bool, up_to: str | None = None
) -> dict[str, float]:
    name = f"carewatch_pgprofile_{uuid.uuid4().hex[:8]}"
    url = with_database(BASE_URL, name)
    ensure_database(url)
    _core_up_to(up_to)
    migrate(url)
    feed = bench_feed(events)
    settings: list[str] = []
    if statements:
        settings += ["SET log_statement_stats = on", "SET client_min_messages = log"]
    if functions:
        settings += ["SET track_functions = 'all'"]
    if explain:
        settings += [
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_analyze = on",
            "SET auto_explain.log_triggers = on",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_level = notice",
            "SET auto_explain.log_timing = on",
            "SET client_min_messages = notice",
        ]

    async def configure(conn: AsyncConnection[Any]) -> None:
        for s in settings:
            await conn.execute(s)  # type: ignore[arg-type]
        await conn.commit()
        conn.add_notice_handler(_on_notice)

    pool = make_pool(url, min_size=1, max_size=1)
    try:
        await pool.open(wait=True)
        async with pool.connection() as conn:
            await configure(conn)
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            await conn.commit()
        assert row is not None
        backend = int(row[0])
        processor = BatchProcessor(pool, _dead_letters, FixedClock(NOW))
        _cpu_by_label.clear()
        _calls_by_label.clear()
        pg0, py0, wall0 = cpu_seconds(backend), time.process_time(), time.perf_counter()
        for start in range(0, len(feed), batch):
            await processor.handle(feed[start : start + batch])
        pg1, py1, wall1 = cpu_seconds(backend), time.process_time(), time.perf_counter()
        assert pg0 is not None and pg1 is not None, "the backend's /proc entry is not readable here"
        async with pool.connection() as conn:
            if functions:
                cur = await conn.execute(
                    "SELECT funcname, calls, self_time, total_time FROM pg_stat_user_functions ORDER BY total_time DESC"
                )
                print("  function                                 calls     self ms    total ms")
                for fname, calls, self_ms, total_ms in await cur.fetchall():
                    print(f"  {fname:<38}{calls:>8}{self_ms:>12.1f}{total_ms:>12.1f}")
            figures = await (
                await conn.execute(
                    "SELECT (SELECT count(*) FROM shift_ledger), (SELECT sum(payable_seconds) FROM shift_ledger),"
                    " (SELECT sum(spend_pence) FROM shift_ledger), (SELECT count(*) FROM alerts),"
                    " (SELECT count(*) FROM carer_week_time), (SELECT sum(rate_seconds) FROM package_day_ledger)"
                )
            ).fetchone()
        print(f"  figures: {figures}")
    finally:
        await pool.close()
        if KEEP:
            print(f"  kept database {name}")
        else:
            drop_database(url)
    return {"pg_us": (pg1 - pg0) * 1e6 / len(feed), "py_us": (py1 - py0) * 1e6 / len(feed), "wall_s": wall1 - wall0}


def _print_statements(total_us: float, events: int) -> None:
    rows = sorted(_cpu_by_label.items(), key=lambda kv: -kv[1])
    counted = sum(_cpu_by_label.values())
    print(f"  backend CPU by statement (getrusage, {counted * 1e6 / events:.0f} us/event of {total_us:.0f} counted):")
    for label, seconds in rows[:40]:
        print(
            f"  {seconds * 1e6 / events:7.1f} us/ev {seconds / max(counted, 1e-9):6.1%} "
            f"x{_calls_by_label.get(label, 0):<5} {label[:140]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--functions", action="store_true")
    parser.add_argument("--explain", metavar="FILE")
    parser.add_argument(
        "--compare",
        metavar="VERSION",
        help="alternate runs migrated only up to VERSION (e.g. 006) with runs fully migrated",
    )
    parser.add_argument("--keep", action="store_true", help="keep each run's database (printed)")
    args = parser.parse_args(argv)
    global KEEP
    KEEP = args.keep
    _instrument()
    sides: list[str | None] = [args.compare, None] if args.compare else [None]
    results: dict[str | None, list[dict[str, float]]] = {side: [] for side in sides}
    for n in range(1, args.runs + 1):
        for side in sides:
            r = asyncio.run(
                one_run(
                    args.events,
                    args.batch,
                    statements=args.statements,
                    functions=args.functions,
                    explain=bool(args.explain),
                    up_to=side,
                )
            )
            results[side].append(r)
            print(
                f"run {n} ({'up to ' + side if side else 'all migrations'}): PostgreSQL {r['pg_us']:.0f} us/event,"
                f" worker (in process) {r['py_us']:.0f} us/event, {r['wall_s']:.1f} s",
                flush=True,
            )
            if args.statements:
                _print_statements(r["pg_us"], args.events)
    if args.explain:
        Path(args.explain).write_text("\n\n".join(_explains), encoding="utf-8")
    for side, runs in results.items():
        each = ", ".join(f"{r['pg_us']:.0f}" for r in runs)
        print(
            f"{'up to ' + side if side else 'all migrations'}: median of {len(runs)}: PostgreSQL "
            f"{statistics.median(r['pg_us'] for r in runs):.0f} us/event (runs {each}), worker "
            f"{statistics.median(r['py_us'] for r in runs):.0f} us/event",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
