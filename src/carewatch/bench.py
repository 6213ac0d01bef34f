"""`carewatch bench`: the real stream worker's throughput against a bare-consumer ceiling, on tansu.

Both read the same simulated events from the same topic. The ceiling is one aiokafka consumer that
only decodes JSON; the worker is `python -m carewatch worker` with a fresh consumer group and a fresh
database, timed until every event is in the database (accepted, rejected or held).

Besides the rates it reports where the CPU goes, from /proc: the worker processes' CPU time and that of
the PostgreSQL backends serving the run's database, each per event, over the same span as the rate
(from the first applied batch to the last). Wall-clock rates move with whatever else the machine runs;
CPU time per event moves much less, so it is the figure to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from carewatch.demo import spawn
from carewatch.schema.migrate import drop_database, ensure_database, migrate, with_database
from carewatch.services import Broker, check_postgres, start_broker
from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import FeedOptions
from carewatch.simulator.sinks import encode, ensure_topic, message_key

BENCH_START = datetime(2026, 4, 6, 5, 0, tzinfo=UTC)  # a fixed Monday: the same events every run
PARTITIONS = 4
# How long held events may sit unmoved before a run counts them as stuck and ends: with several workers
# the held-events sweeps (every 2 s, each a batch of its own, retried when they deadlock on each other)
# can take a while to release what one worker held for another's references.
HELD_PATIENCE = 30.0
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/carewatch"  # only its server is used
# What the run computed, to compare runs (and 1, 2 or 4 worker processes): ledgers, money, alerts.
FIGURES = """
SELECT (SELECT count(*) FROM shift_ledger), (SELECT coalesce(sum(payable_seconds), 0) FROM shift_ledger),
       (SELECT coalesce(sum(spend_pence), 0)::text FROM shift_ledger), (SELECT count(*) FROM alerts),
       (SELECT count(*) FROM alerts WHERE status IN ('open', 'acknowledged')),
       (SELECT count(DISTINCT event_id) FROM rejected_events), (SELECT count(*) FROM held_events)"""
COUNTED = """SELECT (SELECT count(*) FROM events) + (SELECT count(DISTINCT event_id) FROM rejected_events),
                    (SELECT count(*) FROM held_events)"""


BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class WorkerRun:
    steady_rate: float  # events per second from the first applied batch to the last
    total_rate: float  # including process start-up and joining the group
    seconds: float
    held: int
    worker_cpu_us: float | None = None  # worker processes' CPU microseconds per event, same span
    postgres_cpu_us: float | None = None  # the database's backends' CPU microseconds per event


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads) from /proc; None where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14 and 15 of proc(5)


@dataclass
class CpuMeter:
    """CPU seconds of a set of processes, summed; processes seen later count from zero, and one that
    has exited keeps the last reading taken of it (so the sum never goes back)."""

    last: dict[int, float] = field(default_factory=dict)
    readable: bool = True

    def read(self, pids: set[int]) -> float | None:
        for pid in pids | set(self.last):
            seconds = cpu_seconds(pid)
            if seconds is not None:
                self.last[pid] = seconds
            elif pid in pids and pid not in self.last and Path(f"/proc/{pid}").exists():
                self.readable = False  # there, but not ours to read
        return sum(self.last.values()) if self.readable and self.last else None


def per_event_us(start: float | None, end: float | None, events: int) -> float | None:
    if start is None or end is None or events <= 0:
        return None
    return (end - start) * 1e6 / events


def bench_feed(events: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """Exactly `events` simulated events (a care day over enough packages), as (key, value) pairs."""
    packages = max(4, math.ceil(events / 12))
    while True:
        feed = generate_feed(FeedOptions(start=BENCH_START, seed=seed, packages=packages,
                                         providers=max(4, packages // 30), days=1, invoices=0))
        if len(feed) >= events:
            break
        packages = math.ceil(packages * 1.25)
    return [(message_key(e).encode(), encode(e)) for e in feed[:events]]


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    await ensure_topic(bootstrap, topic, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=512 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - started)


async def ceiling(bootstrap: str, topic: str, expected: int, group: str) -> float:
    """Events per second a bare consumer reads and decodes, from its first message to the last."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    seen, first = 0, 0.0
    try:
        async with asyncio.timeout(300):
            while seen < expected:
                for messages in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                    if not first:
                        first = time.perf_counter()
                    for message in messages:
                        json.loads(message.value or b"")
                    seen += len(messages)
    finally:
        await consumer.stop()
    return seen / max(time.perf_counter() - first, 1e-9)


def worker_run(broker: Broker, topic: str, expected: int, database_url: str, workers: int, home: Path,
               label: str) -> WorkerRun:
    """Start `workers` worker processes on a fresh group and database; time until all events are in."""
    env = {**os.environ, "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": database_url,
           "CAREWATCH_EVENTS_TOPIC": topic, "CAREWATCH_DEAD_LETTER_TOPIC": f"{topic}.dead-letter",
           "CAREWATCH_CONSUMER_GROUP": f"{topic}-{label}", "CAREWATCH_TOPIC_PARTITIONS": str(PARTITIONS),
           # Processing time just after the simulated day: absences are judged against that, as live.
           "CAREWATCH_CLOCK": f"fixed:{(BENCH_START + timedelta(days=1, hours=2)).isoformat()}",
           "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    children = [spawn(f"worker-{n}", ["worker"], env, home / f"{label}-worker-{n}.log")
                for n in range(workers)]
    first_at, first_count, last_change = 0.0, 0, time.perf_counter()
    last_state: tuple[int, int] = (-1, -1)
    workers_cpu, postgres_cpu = CpuMeter(), CpuMeter()
    cpu_first: tuple[float | None, float | None] = (None, None)
    cpu_last: tuple[float | None, float | None] = (None, None)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:
                row = conn.execute(COUNTED).fetchone()
                done, held = (int(row[0]), int(row[1])) if row else (0, 0)
                backends = {int(r[0]) for r in conn.execute(BACKENDS).fetchall()}
                cpu = (workers_cpu.read({c.process.pid for c in children}), postgres_cpu.read(backends))
                now = time.perf_counter()
                if done + held and not first_at:
                    first_at, first_count, cpu_first = now, done + held, cpu
                # A change of either count is progress: the held-events sweep moves held events to
                # applied without changing their sum (with several workers, thousands can be held at
                # first, their references written by another worker's batch).
                if (done, held) != last_state:
                    last_state, last_change, cpu_last = (done, held), now, cpu
                # Finished when everything is applied, or when all is in and only held events stay put.
                if done >= expected or (done + held >= expected and now - last_change > HELD_PATIENCE):
                    break
                dead = [c for c in children if not c.alive()]
                if dead or now - last_change > 120:
                    why = f"{dead[0].name} exited" if dead else "no progress for 120 s"
                    tail = (dead or children)[0].tail()
                    raise RuntimeError(f"{why} at {done + held}/{expected} events; {tail}")
                time.sleep(0.2)
        finished = last_change
    finally:
        for child in children:
            child.stop()
    steady = (expected - first_count) / max(finished - first_at, 1e-9) if expected > first_count else 0.0
    counted = expected - first_count
    return WorkerRun(steady, expected / (finished - started), finished - started, held,
                     per_event_us(cpu_first[0], cpu_last[0], counted),
                     per_event_us(cpu_first[1], cpu_last[1], counted))


@dataclass(frozen=True)
class Row:
    name: str
    ceiling_rate: float
    worker_rate: float  # all worker processes together
    total_rate: float
    worker_cpu_us: float | None = None
    postgres_cpu_us: float | None = None


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def table(rows: list[Row], workers: int) -> str:
    """The runs and their median, one line each. Rates are of all worker processes together, then per
    process, and that per-process rate as a share of the ceiling; CPU is microseconds per event."""
    median = Row("median", statistics.median(r.ceiling_rate for r in rows),
                 statistics.median(r.worker_rate for r in rows), statistics.median(r.total_rate for r in rows),
                 _median([r.worker_cpu_us for r in rows]), _median([r.postgres_cpu_us for r in rows]))
    lines = [f"{'run':<7}{'ceiling ev/s':>14}{'worker ev/s':>13}{'incl. start-up ev/s':>21}"
             f"{'per worker process ev/s':>26}{'of ceiling':>12}{'worker CPU us/ev':>18}{'postgres CPU us/ev':>20}"]
    for r in [*rows, median]:
        per_process = r.worker_rate / workers
        lines.append(f"{r.name:<7}{r.ceiling_rate:>14,.0f}{r.worker_rate:>13,.0f}{r.total_rate:>21,.0f}"
                     f"{per_process:>26,.0f}{per_process / max(r.ceiling_rate, 1e-9):>12.1%}"
                     f"{_us(r.worker_cpu_us):>18}{_us(r.postgres_cpu_us):>20}")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    base_url = os.environ.get("CAREWATCH_DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    check_postgres(with_database(base_url, "postgres"))
    workers = max(1, getattr(args, "workers", 1))
    home = Path.cwd() / ".carewatch" / "bench"
    home.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    topic = f"bench-{run_id}"
    made = time.perf_counter()
    messages = bench_feed(args.events)
    print(f"bench: {len(messages)} simulated events generated in {time.perf_counter() - made:.1f} s",
          flush=True)
    broker = start_broker(log_path=home / "tansu.log")
    rows: list[Row] = []
    figures: list[tuple[str, str]] = []
    try:
        produced = asyncio.run(produce(broker.bootstrap, topic, messages))
        print(f"bench: produced to {topic} ({PARTITIONS} partitions, tansu in memory) "
              f"at {produced:,.0f} ev/s", flush=True)
        for n in range(1, args.runs + 1):
            ceil_rate = asyncio.run(ceiling(broker.bootstrap, topic, len(messages), f"{topic}-ceiling-{n}"))
            name = f"carewatch_bench_{run_id}_{n}"
            database_url = with_database(base_url, name)
            ensure_database(database_url)
            migrate(database_url)
            try:
                result = worker_run(broker, topic, len(messages), database_url, workers, home, f"run{n}")
                figures.append(run_figures(database_url))
            finally:
                drop_database(database_url)
            held = f", {result.held} still held" if result.held else ""
            print(f"bench: run {n}: ceiling {ceil_rate:,.0f} ev/s; worker {result.steady_rate:,.0f} ev/s "
                  f"({result.seconds:.1f} s from start{held}); CPU per event: worker "
                  f"{_us(result.worker_cpu_us)} us, PostgreSQL {_us(result.postgres_cpu_us)} us", flush=True)
            rows.append(Row(str(n), ceil_rate, result.steady_rate, result.total_rate, result.worker_cpu_us,
                            result.postgres_cpu_us))
            print(f"bench: run {n}: figures: {figures[-1][0]}; {figures[-1][1]}", flush=True)
    except RuntimeError as exc:
        print(f"bench: the worker did not finish: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        broker.stop()
    print(f"\nbench: {len(messages)} events, {PARTITIONS} partitions, {workers} worker process(es), "
          f"{args.runs} runs; 'worker' is from its first applied batch to the last event in the database, all "
          f"worker processes together; 'of ceiling' is per worker process; CPU from /proc over the same span "
          f"(the worker processes', and the PostgreSQL backends' serving the run's database)\n"
          + table(rows, workers), flush=True)
    kept = sorted({f for f, _ in figures})
    same = "the same in every run" if len(kept) == 1 else "NOT the same in every run"
    print(f"bench: ledgers, spend, rejected and held {same}: {' | '.join(kept)}; alerts (they depend on where "
          f"batches are cut): {', '.join(a for _, a in figures)}", flush=True)
    return 0


def run_figures(database_url: str) -> tuple[str, str]:
    """The run's figures that no batching changes (ledgers, payable seconds, spend, rejected, held), and
    its alerts. The alerts are not expected to be equal across runs: the bench's clock stands after the
    simulated day, so the absence rules raise an alert whenever a batch holds a visit whose clock-in is
    in a later batch, and the next batch resolves it; how many depends on where batches are cut."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(FIGURES).fetchone()
    if row is None:
        return "none", "none"
    ledgers, payable, spend, alerts, active, rejected, held = row
    return (f"{ledgers:,} shift ledgers, {payable:,} payable seconds, {spend} pence spent; "
            f"{rejected:,} rejected, {held:,} held"), f"{alerts:,} alerts ({active:,} active)"
