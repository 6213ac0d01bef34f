"""Statement benchmark: a commissioner with 10,000 packages and a year of shifts, its books timed.

The data set goes straight into a scratch database by COPY (not through Kafka): commissioners,
providers, carers, packages, one shift ledger row per package per day (or --visits-per-day), one
travel activity per package per day and one invoice per package per month. The roll-ups of
migration 006 are then built in one statement, as their triggers would have kept them. Timed, each
the median of --repeats: the commissioner's month, the provider league table, the GraphQL
`statement` query and the CSV export over HTTP (the real app in process), the package league
table and the commissioner's year.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg

from carewatch.domain.statements import StatementScope
from carewatch.pipeline.statements import StatementRequest
from carewatch.schema.migrate import drop_database, ensure_database, migrate, with_database
from carewatch.security.roles import Role, Viewer
from carewatch.services import check_postgres, free_port

COMMISSIONER = "LA-BENCH"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/carewatch"  # only its server is used
ZONE = ZoneInfo("Europe/London")
YEAR_START = date(2025, 4, 1)
DAYS = 365
RATE = 2400  # pence per hour, day band
PLAN_MINUTES = 420  # a week: one hour a day


def _ledger_lines(packages: int, providers: int, visits: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    # Each provider delivers its own share of the plan, so the league table has something to order.
    delivery = [0.78 + 0.2 * rng.random() for _ in range(providers)]
    for n in range(packages):
        package, provider = f"PKG-{n:05d}", n % providers
        for day in range(DAYS):
            local = YEAR_START + timedelta(days=day)
            for v in range(visits):
                starts = datetime(local.year, local.month, local.day, 8 + 4 * v, tzinfo=ZONE).astimezone(UTC)
                planned = 3600 // visits
                actual = 0 if rng.random() > delivery[provider] + 0.1 else planned - rng.randrange(0, 600)
                payable = max(0, min(actual, planned))
                unverified = actual if rng.random() < 0.02 else 0
                yield (f"SH-{n:05d}-{day:03d}-{v}\t{package}\tPRV-{provider:03d}\t{starts.isoformat()}\t{planned}\t"
                       f"{planned}\t{actual}\t{payable}\t{actual - payable}\t{unverified}\t0\t{payable}\t0\t0\t0\t"
                       f"{payable * RATE}\t{payable * RATE / 3600:.6f}\t\\N\t0\t{1 if actual else 0}\t[]\t"
                       f"{local.isoformat()}\tt\n")


def _activity_lines(packages: int, providers: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed + 1)
    for n in range(packages):
        for day in range(DAYS):
            local = YEAR_START + timedelta(days=day)
            at = datetime(local.year, local.month, local.day, 9, tzinfo=ZONE).astimezone(UTC)
            yield (f"A-{n:05d}-{day:03d}\tCR-{n // 5:05d}\tPRV-{n % providers:03d}\tPKG-{n:05d}\ttravel\t"
                   f"{rng.randint(5, 25)}\t{at.isoformat()}\t{local.isoformat()}\n")


def _invoice_lines(packages: int, providers: int) -> Iterator[str]:
    for n in range(packages):
        for month in range(12):
            first = date(YEAR_START.year + (YEAR_START.month + month - 1) // 12,
                         (YEAR_START.month + month - 1) % 12 + 1, 1)
            nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
            days = (nxt - first).days
            total = days * 60 * RATE // 60
            lines = json.dumps([{"shift_id": f"SH-{n:05d}-{(first - YEAR_START).days:03d}-0", "minutes": 60,
                                 "amount_pence": RATE}, {"minutes": (days - 1) * 60, "amount_pence": total - RATE}])
            yield (f"INV-{n:05d}-{month:02d}\tPKG-{n:05d}\tPRV-{n % providers:03d}\t{first}\t"
                   f"{nxt - timedelta(days=1)}\t{total}\t{lines}\t{nxt.isoformat()}T09:00:00Z\n")


def _copy(conn: psycopg.Connection, table: str, columns: str, lines: Iterator[str], label: str) -> None:
    started, rows = time.perf_counter(), 0
    statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg.sql.Identifier(table),
        psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(c.strip()) for c in columns.split(",")))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        chunk = io.StringIO()
        for rows, line in enumerate(lines, start=1):
            chunk.write(line)
            if rows % 50_000 == 0:
                copy.write(chunk.getvalue())
                chunk = io.StringIO()
                if rows % 1_000_000 == 0:
                    print(f"statement-bench:   {label}: {rows:,} rows ({time.perf_counter() - started:.0f} s)",
                          flush=True)
        copy.write(chunk.getvalue())
    print(f"statement-bench: {label}: {rows:,} rows copied in {time.perf_counter() - started:.1f} s", flush=True)


def build(database_url: str, packages: int, providers: int, visits: int, seed: int) -> None:
    plan = json.dumps([{"service_type": "personal_care", "minutes_per_week": PLAN_MINUTES}])
    rates = json.dumps([{"service_type": "personal_care", "band": "day", "pence_per_hour": RATE}])
    with psycopg.connect(database_url) as conn:
        conn.execute("SET session_replication_role = replica")  # triggers off: the roll-ups are built below
        conn.execute("INSERT INTO commissioners VALUES (%s, 'Bench Council', 'local_authority', 'Europe/London',"
                     " '2025-01-01T00:00:00Z')", (COMMISSIONER,))
        _copy(conn, "providers", "provider_id, name, registered_at",
              (f"PRV-{p:03d}\tProvider {p}\t2025-01-01T00:00:00Z\n" for p in range(providers)), "providers")
        _copy(conn, "carers", "carer_id, provider_id, pay_pence_per_hour, registered_at",
              (f"CR-{c:05d}\tPRV-{(c * 5) % providers:03d}\t1300\t2025-01-01T00:00:00Z\n"
               for c in range((packages + 4) // 5)), "carers")
        _copy(conn, "packages", "package_id, commissioner_id, provider_id, mechanism, person_id, nhs_number, "
              "period_start, period_end, budget_pence, contingency_pence, plan, rates, planned_minutes_per_week, "
              "approved_at",
              (f"PKG-{n:05d}\t{COMMISSIONER}\tPRV-{n % providers:03d}\tcommissioned\tP-{n:05d}\t9434765919\t"
               f"{YEAR_START}\t{YEAR_START + timedelta(days=DAYS - 1)}\t{PLAN_MINUTES * 52 * RATE // 60 + 50_000}\t"
               f"50000\t{plan}\t{rates}\t{PLAN_MINUTES}\t2025-01-01T00:00:00Z\n" for n in range(packages)),
              "packages")
        _copy(conn, "shift_ledger", "shift_id, package_id, provider_id, starts_at, planned_seconds, "
              "scheduled_seconds, actual_seconds, payable_seconds, overrun_seconds, unverified_seconds, "
              "provider_cancelled_seconds, day_seconds, night_seconds, weekend_seconds, bank_holiday_seconds, "
              "rate_seconds, spend_pence, first_clock_in_at, open_attendances, distinct_carers, attendance, "
              "local_date, in_period", _ledger_lines(packages, providers, visits, seed), "shift ledgers")
        _copy(conn, "activities", "event_id, carer_id, provider_id, package_id, kind, minutes, occurred_at, "
              "local_date", _activity_lines(packages, providers, seed), "activities")
        _copy(conn, "invoices", "invoice_id, package_id, provider_id, period_start, period_end, total_pence, "
              "lines, submitted_at", _invoice_lines(packages, providers), "invoices")
        started = time.perf_counter()
        conn.execute("SELECT carewatch_rebuild_rollups()")
        print(f"statement-bench: roll-ups built in {time.perf_counter() - started:.1f} s", flush=True)
    with psycopg.connect(database_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"statement-bench: VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


async def _store_matches(database_url: str) -> int:
    """Store each invoice's match as the stream does once it has matched it (pipeline/purchase_to_pay.py),
    by the same rule statements apply to versions not matched yet; returns how many."""
    from carewatch.pipeline.statements import invoice_figures
    from carewatch.store.db import make_pool
    from carewatch.store.scope import ADMIN
    from carewatch.store.statements import invoice_rows

    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        rows = await invoice_rows(pool, ADMIN, YEAR_START, YEAR_START + timedelta(days=DAYS))
        figures = [invoice_figures(r) for r in rows]
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE invoices i SET matched_pence = m.matched, status = m.status, matched_at = now()"
                " FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS m(invoice_id, matched, status)"
                " WHERE i.invoice_id = m.invoice_id",
                ([r.invoice_id for r in rows], [m for m, _ in figures],
                 ["DISPUTED" if d else "MATCHED" for _, d in figures]))
        return len(rows)
    finally:
        await pool.close()


def match_invoices(database_url: str) -> None:
    started = time.perf_counter()
    n = asyncio.run(_store_matches(database_url))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE invoices")
    print(f"statement-bench: {n:,} invoices matched and stored as the stream would in "
          f"{time.perf_counter() - started:.1f} s", flush=True)


def _median_ms(repeats: int, work: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


Timing = tuple[str, float, str]


def _report(results: list[Timing], what: str, ms: float, note: str) -> None:
    results.append((what, ms, note))
    print(f"statement-bench: {what}: {ms:.0f} ms ({note})", flush=True)


async def _service_timings(database_url: str, repeats: int, now: datetime, results: list[Timing],
                           asks: list[tuple[str, StatementRequest]]) -> None:
    """The service layer (pipeline/statements.py) as the API calls it, for a commissioner's token."""
    from carewatch.pipeline.statements import statements
    from carewatch.store.db import make_pool

    viewer = Viewer(Role.COMMISSIONER, COMMISSIONER)
    pool = make_pool(database_url)
    await pool.open(wait=True)
    try:
        for what, ask in asks:
            times, found = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                found = await statements(pool, viewer, ask, now)
                times.append((time.perf_counter() - started) * 1000)
            note = (f"{found[0].packages:,} packages" if ask.subject_id and found else f"{len(found):,} rows")
            _report(results, what, statistics.median(times), note)
    finally:
        await pool.close()


async def _token(database_url: str) -> str:
    from carewatch.security.tokens import create_token

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        return (await create_token(conn, "commissioner", COMMISSIONER, "statement-bench")).secret


@contextmanager
def _api(database_url: str, now: datetime) -> Iterator[str]:
    """`carewatch api` on a free port with the processing clock at `now`; yields its base URL."""
    port = free_port()
    env = {**os.environ, "CAREWATCH_DATABASE_URL": database_url, "CAREWATCH_CLOCK": f"fixed:{now.isoformat()}",
           "CAREWATCH_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "carewatch", "api", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start (is Redis running?)")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


def measure(database_url: str, repeats: int) -> list[Timing]:
    """Each timing as (what, median ms, what came back)."""
    now = datetime(2026, 2, 10, 12, tzinfo=UTC)
    month = (date(2025, 11, 1), date(2025, 12, 1))
    year = (YEAR_START, YEAR_START + timedelta(days=DAYS))
    results: list[Timing] = []
    asyncio.run(_service_timings(database_url, repeats, now, results, [
        ("commissioner month (service)", StatementRequest(StatementScope.COMMISSIONER, *month, COMMISSIONER)),
        ("provider league table, month (service)",
         StatementRequest(StatementScope.PROVIDER, *month, commissioner_id=COMMISSIONER)),
    ]))
    token = asyncio.run(_token(database_url))
    with _api(database_url, now) as base, httpx.Client(base_url=base, timeout=60) as client:
        headers = {"Authorization": f"Bearer {token}"}
        query = ("query($from: Date!, $to: Date!) { statement(scope: COMMISSIONER, id: \"LA-BENCH\", from: $from,"
                 " to: $to) { packages orderedMinutes deliveredPence invoicedPence matchedPence disputedInvoices"
                 " varianceMinutes nonDirectCareShare recoverableUnderspendPence } }")
        body = {"query": query, "variables": {"from": month[0].isoformat(), "to": month[1].isoformat()}}
        ms, answer = _median_ms(repeats, lambda: client.post("/graphql", json=body, headers=headers).json())
        _report(results, "GraphQL statement, commissioner month (HTTP)", ms, json.dumps(answer)[:160])
        asyncio.run(_service_timings(database_url, repeats, now, results, [
            ("package league table, month (service)", StatementRequest(StatementScope.PACKAGE, *month)),
        ]))
        params = {"scope": "package", "from": month[0].isoformat(), "to": month[1].isoformat()}
        ms, text = _median_ms(repeats, lambda: client.get("/exports/statements.csv", params=params,
                                                          headers=headers).text)
        _report(results, "CSV export, package league table, month (HTTP)", ms,
                f"{len(str(text).splitlines()):,} lines")
    asyncio.run(_service_timings(database_url, repeats, now, results, [
        ("commissioner year (service)", StatementRequest(StatementScope.COMMISSIONER, *year, COMMISSIONER)),
    ]))
    return results


def run_statement_bench(args: argparse.Namespace) -> int:
    base_url = os.environ.get("CAREWATCH_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    check_postgres(with_database(base_url, "postgres"))
    name = args.reuse or f"carewatch_statement_bench_{uuid.uuid4().hex[:8]}"
    database_url = with_database(base_url, name)
    try:
        if not args.reuse:
            ensure_database(database_url)
            migrate(database_url)
            started = time.perf_counter()
            print(f"statement-bench: building {args.packages:,} packages x {DAYS} days x {args.visits_per_day} "
                  f"visit(s) in database {name} ...", flush=True)
            build(database_url, args.packages, args.providers, args.visits_per_day, args.seed)
            match_invoices(database_url)
            print(f"statement-bench: data set ready in {time.perf_counter() - started:.0f} s", flush=True)
        results = measure(database_url, args.repeats)
    finally:
        if args.keep or args.reuse:
            print(f"statement-bench: kept database {name} (--reuse {name} to measure again)", flush=True)
        else:
            drop_database(database_url)
    print(f"\nstatement-bench: {args.packages:,} packages, {args.providers} providers, one commissioner, "
          f"{DAYS} days x {args.visits_per_day} visit(s) a day; median of {args.repeats} runs")
    for what, ms, _ in results:
        print(f"  {what:<58}{ms:>8.0f} ms")
    return 0 if all(ms < 1000 for _, ms, _ in results) else 1
