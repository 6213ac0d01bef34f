"""One run of the fault suite: the feed through real processes on services of the run's own, with or
without faults, then read back as a Snapshot.

The feed goes out in chunks at a steady rate; in a faulty run one fault strikes in the middle of each
chunk (while messages are flowing), is repaired, and the run waits until the worker has caught up
before the next chunk. "Caught up" is never a sleep: every message produced so far is in `events`,
`held_events` or `rejected_events` (by event_id, or by its raw text when it has none), and at the end
the consumer group's committed offsets also reach what was produced.

One simulated clock for all: while the feed flows, the worker and the scheduler see the feed's first
instant (so no deadline has passed and nothing depends on how far the stream has got); once it is
drained, the scheduler is restarted at the end instant and sweeps until it has nothing left to
change. The API answers at the end instant throughout. Both runs therefore decide every absence
alert against the same deadlines and the same facts.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from carewatch.faults.compare import Snapshot
from carewatch.faults.feed import FaultFeed
from carewatch.faults.services import Child, Services
from carewatch.faults.snapshot import take_snapshot
from carewatch.schema.migrate import ensure_database, migrate
from carewatch.services import free_port, wait_for_port
from carewatch.simulator.sinks import ensure_topic

T = TypeVar("T")
TOPIC = "care-events"
GROUP = "carewatch-faults"
PARTITIONS = 4
FAULTS = ("kill-worker", "postgres-stop", "kill-worker", "redis-restart", "worker-handover", "broker-restart",
          "kill-worker")


@dataclass(frozen=True)
class Plan:
    feed: FaultFeed
    home: Path
    rate: float = 150.0  # messages per second
    postgres_outage: float = 30.0  # seconds PostgreSQL stays stopped
    stall_seconds: float = 90.0  # no progress for this long: stop waiting, and say what is missing
    chunks: int = len(FAULTS) + 1

    @property
    def start_clock(self) -> str:
        return f"fixed:{self.feed.shape.start.isoformat()}"

    @property
    def end_instant(self) -> datetime:
        return self.feed.shape.end + timedelta(hours=2)

    @property
    def end_clock(self) -> str:
        return f"fixed:{self.end_instant.isoformat()}"


@dataclass
class FaultReport:
    name: str
    at_message: int
    what: str
    caught_up_after: float | None = None  # seconds from the fault to the worker having caught up
    after_repair: float | None = None  # ... from the repair

    def line(self) -> str:
        if self.caught_up_after is None:
            return f"{self.name:<16} at message {self.at_message:>6}: {self.what}; did NOT catch up"
        return (f"{self.name:<16} at message {self.at_message:>6}: {self.what}; caught up "
                f"{self.caught_up_after:.1f} s after the fault ({self.after_repair:.1f} s after the repair)")


@dataclass
class RunResult:
    label: str
    snapshot: Snapshot | None
    faults: list[FaultReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # stalls, lost messages, processes that died
    seconds: float = 0.0


def quiet_kafka_logs() -> None:
    """aiokafka logs every failed connection while the broker is down: the fault is said once, by us."""
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def sweeps_done(log: Path) -> bool:
    """Whether a scheduler has completed a slow sweep (every 30 s) and two absence sweeps after it, none of
    them failing, by its log (apscheduler logs each job run; a failing sweep logs `... sweep failed`)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return False
    slow_ok = fast_after = failed = 0
    for line in lines:
        if "sweep failed" in line:
            failed += 1
        elif "executed successfully" in line and "AlertScheduler.sweep_slow" in line:
            slow_ok, fast_after = slow_ok + 1, 0
        elif "executed successfully" in line and "AlertScheduler.sweep_fast" in line:
            fast_after += 1
    return slow_ok > 0 and fast_after >= 2 and not failed


def say(text: str) -> None:
    print(f"faults: {text}", flush=True)


class Run:
    """The processes and bookkeeping of one run."""

    def __init__(self, label: str, plan: Plan, services: Services) -> None:
        self.label, self.plan, self.services = label, plan, services
        self.messages = plan.feed.messages
        self.tracking = [m.tracking_id() for m in self.messages]
        self.limit = 0  # the producer sends messages[:limit]
        self.sent = 0
        self.end_offsets: dict[int, int] = {}
        self.accounted: set[str] = set()
        self.lost: set[str] = set()
        self.workers: list[Child] = []
        self.worker_ports: dict[str, int] = {}
        self.scheduler: Child | None = None
        self.api: Child | None = None
        self.api_url = ""
        self.bootstrap = ""
        self.token = ""
        self.env: dict[str, str] = {}
        self.result = RunResult(label, None)
        self._started = 0

    def say(self, text: str) -> None:
        say(f"{self.label}: {text}")

    @property
    def database_url(self) -> str:
        assert self.services.postgres is not None
        return self.services.postgres.url("carewatch")

    # services and processes

    async def start(self) -> None:
        s = self.services
        started = time.monotonic()
        await asyncio.to_thread(s.start_postgres)
        ensure_database(self.database_url)
        await asyncio.to_thread(migrate, self.database_url)
        s.start_redis()
        await asyncio.to_thread(s.start_s3)
        broker = s.start_broker()
        self.bootstrap = broker.bootstrap
        await ensure_topic(broker.bootstrap, TOPIC, PARTITIONS)
        self.env = {**os.environ, "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": self.database_url,
                    "CAREWATCH_REDIS_URL": s.redis_url, "CAREWATCH_EVENTS_TOPIC": TOPIC,
                    "CAREWATCH_DEAD_LETTER_TOPIC": f"{TOPIC}.dead-letter", "CAREWATCH_CONSUMER_GROUP": GROUP,
                    "CAREWATCH_TOPIC_PARTITIONS": str(PARTITIONS), "CAREWATCH_WORKER_SESSION_TIMEOUT": "6",
                    "CAREWATCH_CLOCK": self.plan.start_clock, "CAREWATCH_ENV": "development",
                    "CAREWATCH_INGEST_RATE_PER_MINUTE": "0", "PYTHONUNBUFFERED": "1"}
        self.env.pop("CAREWATCH_REDIS_PREFIX", None)
        self.token = self._admin_token()
        port = free_port()
        self.api = s.carewatch("api", ["api", "--port", str(port)],
                               {**self.env, "CAREWATCH_CLOCK": self.plan.end_clock})
        self.api_url = f"http://127.0.0.1:{port}"
        self.scheduler = s.carewatch("scheduler-feed", ["scheduler"], self.env)
        self.start_worker()
        await asyncio.to_thread(wait_for_port, port, "127.0.0.1", 60.0)
        pg_port = s.postgres.port if s.postgres else 0
        self.say(f"services up in {time.monotonic() - started:.1f} s: PostgreSQL :{pg_port} (initdb), "
                 f"redis-server :{s.redis_port}, S3 (moto) :{s.s3_port}, tansu :{s.broker_port} "
                 f"(s3://tansu/); worker, scheduler (clock {self.plan.start_clock}), API :{port} "
                 f"(clock {self.plan.end_clock}); logs in {s.home}")

    def _admin_token(self) -> str:
        done = subprocess.run([sys.executable, "-m", "carewatch", "token", "create", "--role", "admin",
                               "--name", "fault suite"], env=self.env, capture_output=True, text=True, timeout=60,
                              check=False)
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"could not create an admin token: {done.stderr.strip()}")
        return done.stdout.strip()

    def start_worker(self) -> Child:
        self._started += 1
        name = f"worker-{self._started}"
        port = free_port()
        child = self.services.carewatch(name, ["worker"], {**self.env, "CAREWATCH_WORKER_METRICS_PORT": str(port)})
        self.worker_ports[name] = port
        self.workers.append(child)
        return child

    def _live_workers(self) -> list[Child]:
        return [w for w in self.workers if w.alive()]

    def _check_processes(self) -> None:
        """A worker that died on its own is a finding: say so, and start another so the run can go on."""
        for worker in list(self.workers):
            if not worker.alive() and not worker.killed:
                worker.killed = True
                problem = f"{worker.name} exited by itself (status {worker.process.returncode}): {worker.tail(5)}"
                self.result.problems.append(problem)
                self.say(problem)
                if not self._live_workers():
                    self.start_worker()

    def kill_worker(self, worker: Child) -> None:
        worker.killed = True
        worker.kill(signal.SIGKILL)

    def batches_of(self, worker: Child) -> float:
        """Batches a worker has applied, from its own /metrics (0 until it answers)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.worker_ports[worker.name]}/metrics", timeout=2).text
        except httpx.HTTPError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("carewatch_batch_size_count"):
                return float(line.split()[-1])
        return 0.0

    # producing

    async def produce(self) -> None:
        """Send messages[:limit] at the plan's rate; resend what a broker restart interrupted."""
        producer: AIOKafkaProducer | None = None
        step = max(1, round(self.plan.rate / 10))
        try:
            while self.sent < len(self.messages):
                if self.sent >= self.limit:
                    await asyncio.sleep(0.02)
                    continue
                batch = self.messages[self.sent:min(self.limit, self.sent + step)]
                ticked = time.monotonic()
                try:
                    if producer is None:
                        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap,
                                                    linger_ms=5, acks=1, enable_idempotence=False,
                                                    request_timeout_ms=20_000)
                        await producer.start()
                    pending = [await producer.send(TOPIC, m.value, key=m.key) for m in batch]
                    for meta in await asyncio.gather(*pending):
                        self.end_offsets[meta.partition] = max(self.end_offsets.get(meta.partition, 0),
                                                               meta.offset + 1)
                except KafkaError as exc:
                    self.say(f"producer: {type(exc).__name__} ({exc}); sending those {len(batch)} again")
                    if producer is not None:
                        with contextlib.suppress(Exception):
                            await producer.stop()
                    producer = None
                    await asyncio.sleep(1.0)
                    continue
                self.sent += len(batch)
                await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - ticked)))
        finally:
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()

    # waiting

    def _unaccounted(self, wanted: Sequence[str]) -> list[str]:
        missing = [t for t in wanted if t not in self.accounted]
        if not missing:
            return []
        ids = [t[3:] for t in missing if t.startswith("id:")]
        raws = [t[4:] for t in missing if t.startswith("raw:")]
        found: set[str] = set()
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            if ids:
                rows = conn.execute(
                    "SELECT event_id FROM events WHERE event_id = ANY(%(ids)s) "
                    "UNION SELECT event_id FROM held_events WHERE event_id = ANY(%(ids)s) "
                    "UNION SELECT event_id FROM rejected_events WHERE event_id = ANY(%(ids)s)", {"ids": ids})
                found |= {"id:" + str(r[0]) for r in rows.fetchall()}
            if raws:
                rows = conn.execute("SELECT raw FROM rejected_events WHERE raw = ANY(%s)", (raws,))
                found |= {"raw:" + str(r[0]) for r in rows.fetchall()}
        self.accounted |= found
        return [t for t in missing if t not in found]

    async def caught_up(self, upto: int, since: float) -> float | None:
        """Seconds from `since` until every message of messages[:upto] is accounted for.

        None when some never will be: the consumer group has committed past them (acknowledged without
        applying or rejecting them), or nothing moved for `stall_seconds`. Those are named and counted
        as lost, and not waited for again.
        """
        wanted = sorted({t for t in self.tracking[:upto] if t not in self.lost})
        best, last_progress = len(wanted) + 1, time.monotonic()
        while True:
            try:
                missing: list[str] | None = await asyncio.to_thread(self._unaccounted, wanted)
            except psycopg.Error:
                missing = None  # the database is down: not caught up
            if missing == []:
                return time.monotonic() - since
            now = time.monotonic()
            if missing is not None and len(missing) < best:
                best, last_progress = len(missing), now
            idle = now - last_progress
            acknowledged = missing is not None and idle > 3 and self.sent >= upto and await self._lag_or_none() == 0
            if acknowledged or idle > self.plan.stall_seconds:
                gone = missing or []
                self.lost.update(gone)
                why = "the worker committed their offsets without applying or rejecting them" if acknowledged \
                    else f"no progress for {self.plan.stall_seconds:.0f} s"
                problem = (f"{len(gone)} messages never reached events, held_events or rejected_events ({why}): "
                           f"{', '.join(t[:60] for t in gone[:6])}{' ...' if len(gone) > 6 else ''}")
                self.result.problems.append(problem)
                self.say(problem)
                return None
            self._check_processes()
            await asyncio.sleep(0.25 if idle < 3 else 1.0)

    async def _lag_or_none(self) -> int | None:
        try:
            return await asyncio.wait_for(self.lag(), 10)
        except (KafkaError, OSError, TimeoutError):
            return None

    async def lag(self) -> int:
        """Messages produced but not committed by the worker's consumer group, over all partitions."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=GROUP,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            total = 0
            for partition, end in self.end_offsets.items():
                committed = await consumer.committed(TopicPartition(TOPIC, partition))
                total += max(0, end - (committed or 0))
            return total
        finally:
            await consumer.stop()

    async def until_produced(self, n: int) -> None:
        while self.sent < n:
            await asyncio.sleep(0.02)

    # the faults

    async def fault(self, name: str) -> tuple[str, float]:
        """Inject one fault and repair it; return what was done and when the repair was complete."""
        s = self.services
        at = self.sent
        if name == "kill-worker":
            victim = self._live_workers()[-1]
            self.kill_worker(victim)
            self.say(f"fault: kill -9 {victim.name} (pid {victim.process.pid}) at message {at}")
            worker = self.start_worker()
            return f"kill -9 {victim.name}, {worker.name} started", time.monotonic()
        if name == "postgres-stop":
            assert s.postgres is not None
            await asyncio.to_thread(s.postgres.stop, "fast")
            self.say(f"fault: PostgreSQL stopped (pg_ctl stop -m fast) at message {at}; "
                     f"starting it again in {self.plan.postgres_outage:g} s")
            await asyncio.sleep(self.plan.postgres_outage)
            await asyncio.to_thread(s.postgres.start)
            self.say("repair: PostgreSQL started again")
            return f"PostgreSQL stopped for {self.plan.postgres_outage:g} s", time.monotonic()
        if name == "redis-restart":
            assert s.redis is not None
            s.redis.kill(signal.SIGKILL)
            self.say(f"fault: kill -9 redis-server at message {at}")
            await asyncio.sleep(1.0)
            s.start_redis()
            self.say(f"repair: redis-server started again on :{s.redis_port}")
            return "Redis killed and restarted", time.monotonic()
        if name == "worker-handover":
            first = self._live_workers()[-1]
            second = self.start_worker()
            self.say(f"fault: {second.name} joins the group at message {at}")
            joined = time.monotonic()
            while self.batches_of(second) < 1 and time.monotonic() - joined < 60:
                await asyncio.sleep(0.25)
            self.say(f"{second.name} applied its first batch {time.monotonic() - joined:.1f} s after starting; "
                     f"kill -9 {first.name} at message {self.sent}")
            self.kill_worker(first)
            return f"1 -> 2 -> 1 workers ({second.name} joined, kill -9 {first.name})", time.monotonic()
        if name == "broker-restart":
            s.kill_broker()
            self.say(f"fault: kill -9 tansu at message {at}")
            await asyncio.sleep(1.0)
            s.start_broker()
            self.say(f"repair: tansu started again on :{s.broker_port} with the same S3 bucket")
            return "broker killed and restarted (same port, same S3 bucket)", time.monotonic()
        raise ValueError(f"unknown fault {name!r}")

    # the whole run

    async def feed(self, faults: Sequence[str]) -> None:
        n = len(self.messages)
        chunks = self.plan.chunks
        bounds = [round(n * i / chunks) for i in range(chunks + 1)]
        producing = asyncio.create_task(self.produce())
        try:
            for i in range(chunks):
                low, high = bounds[i], bounds[i + 1]
                self.limit = high
                name = faults[i] if i < len(faults) else None
                if name is not None:
                    await self._race(producing, self.until_produced((low + high) // 2))
                    at, injected = self.sent, time.monotonic()
                    what, repaired = await self._race(producing, self.fault(name))
                    report = FaultReport(name, at, what)
                    after = await self._race(producing, self.caught_up(self.sent, injected))
                    if after is not None:
                        report.caught_up_after, report.after_repair = after, after - (repaired - injected)
                    self.result.faults.append(report)
                    self.say(f"recovery: {report.line()}")
                await self._race(producing, self.until_produced(high))
                await self._race(producing, self.caught_up(high, time.monotonic()))
            lost = f"; {len(self.lost)} of them lost" if self.lost else ""
            self.say(f"all {n} messages produced and accounted for{lost}")
        finally:
            producing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await producing

    async def _race(self, producing: asyncio.Task[None], work: Awaitable[T]) -> T:
        """Await `work`, but fail at once if the producer failed."""
        task = asyncio.ensure_future(work)
        if not producing.done():
            await asyncio.wait({task, producing}, return_when=asyncio.FIRST_COMPLETED)
        if producing.done() and producing.exception() is not None:
            task.cancel()
            producing.result()  # raises the producer's failure
        return await task

    async def settle(self) -> None:
        """Committed offsets at the end of the topic; then the scheduler at the end instant."""
        deadline = time.monotonic() + 60
        lag = -1
        while time.monotonic() < deadline:
            with contextlib.suppress(KafkaError, OSError):
                lag = await self.lag()
                if lag == 0:
                    break
            await asyncio.sleep(0.5)
        if lag != 0:
            self.result.problems.append(f"consumer lag still {lag} a minute after every message was accounted for")
        self.say(f"consumer lag {lag} (committed offsets of group {GROUP} against what was produced)")
        if self.scheduler is not None:
            self.scheduler.stop()
        started = time.monotonic()
        # At DEBUG the scheduler logs each job it runs (apscheduler's lines), which sweeps_done reads.
        self.scheduler = self.services.carewatch("scheduler-end", ["scheduler"],
                                                 {**self.env, "CAREWATCH_CLOCK": self.plan.end_clock,
                                                  "CAREWATCH_LOG_LEVEL": "DEBUG"})
        self.say(f"scheduler restarted at the end instant ({self.plan.end_clock}); sweeping")
        last, stable_since = None, time.monotonic()
        while True:
            state = await asyncio.to_thread(self._alert_state)
            if state != last:
                last, stable_since = state, time.monotonic()
            swept = sweeps_done(self.scheduler.log)
            if swept and time.monotonic() - stable_since >= 2:
                break
            if not self.scheduler.alive() or time.monotonic() - started > 180:
                self.result.problems.append(f"the end-instant scheduler did not finish its sweeps: "
                                            f"{self.scheduler.tail(5)}")
                break
            await asyncio.sleep(0.5)
        self.scheduler.stop()
        for worker in self._live_workers():
            worker.stop()
        waiting = await asyncio.to_thread(self._still_settling)
        if waiting:
            self.result.problems.append(f"{waiting} UNKNOWN_CARER/PAY_BELOW_MINIMUM judgements still waiting in "
                                        "`settling` after the final sweeps at the end instant")
        self.say(f"final sweeps done in {time.monotonic() - started:.1f} s: {last[0] if last else 0} alerts")

    def _still_settling(self) -> int:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM settling").fetchone()
        return int(row[0]) if row else 0

    def _alert_state(self) -> tuple[int, str]:
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*), coalesce(md5(string_agg(id || status, ',' ORDER BY id)), '') "
                               "FROM alerts").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    async def snapshot(self) -> Snapshot:
        assert self.api is not None
        if not self.api.alive():
            self.result.problems.append(f"the API exited during the run: {self.api.tail(5)}")
            raise RuntimeError("the API is not running")
        shape = self.plan.feed.shape
        return await asyncio.to_thread(take_snapshot, self.database_url, self.api_url, self.token, shape.start,
                                       shape.end, self.result.problems)


async def _run(label: str, plan: Plan, faults: Sequence[str], services: Services) -> RunResult:
    """The run's result; when it cannot finish, what it got to, with the reason among its problems."""
    quiet_kafka_logs()
    run = Run(label, plan, services)
    started = time.monotonic()
    try:
        await run.start()
        await run.feed(faults)
        await run.settle()
        run.result.snapshot = await run.snapshot()
        (services.home / "snapshot.json").write_text(run.result.snapshot.to_json())
    except Exception as exc:
        run.result.problems.append(f"the run failed: {type(exc).__name__}: {exc}")
        run.say(f"FAILED: {type(exc).__name__}: {exc}")
    run.result.seconds = time.monotonic() - started
    return run.result


def run_once(label: str, plan: Plan, faults: Sequence[str],
             runner: Callable[..., Coroutine[Any, Any, RunResult]] = _run) -> RunResult:
    """One run on its own services, all of which are stopped before this returns (or raises)."""
    home = plan.home / label.replace(" ", "-")
    home.mkdir(parents=True, exist_ok=True)
    services = Services(home)
    atexit.register(services.close)  # even on an exit that skips the finally below
    try:
        return asyncio.run(runner(label, plan, faults, services))
    finally:
        services.close()
        atexit.unregister(services.close)
