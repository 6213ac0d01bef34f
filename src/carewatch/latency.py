"""`carewatch alert-latency`: how fast alerts reach a subscriber, on real processes under load.

Each run starts its own tansu broker, a fresh database, and the real worker, scheduler and API
processes on one accelerated clock, subscribes to `alerts` over graphql-transport-ws like a
safeguarding lead, and keeps ~1,000 background events a second flowing (new shifts being scheduled,
each written and given its ledger row by the worker). Then it measures:

- clock-out -> alert: N clock-outs, each ending a visit far short of its plan, so each raises a
  SHORT_VISIT; from just before the event is produced to Kafka until the alert arrives on the
  subscription (bar: p99 < 1 s);
- deadline -> alert: M visits nobody attends, their LATE_START deadlines spread over the run; from
  the instant the deadline passes on the processing clock, converted to real time, until the alert
  arrives (bar: p99 < 3 s). The scheduler sweeps every second, so up to a second of this is by design.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaProducer
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from carewatch import settings as settings_module
from carewatch.clock import AcceleratedClock
from carewatch.demo import Child, spawn
from carewatch.schema.events import message_key
from carewatch.schema.migrate import drop_database, ensure_database, migrate, with_database
from carewatch.security.tokens import create_token
from carewatch.services import Broker, check_postgres, check_redis, free_port, start_broker, wait_for_port
from carewatch.simulator.sinks import ensure_topic

SPEED = 10.0  # simulated seconds per real second
LEAD_SECONDS = 20.0  # real seconds from launch to the clock's start: processes start, setup is applied
SIM_START = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)  # a Tuesday
PARTITIONS = 4
BACKGROUND_PACKAGES = 8
COMMISSIONER, PROVIDER = "LA-LAT", "PRV-LAT"
VISITS_PACKAGE, ABSENCE_PACKAGE = "PKG-LAT-V", "PKG-LAT-A"
ABSENCE_LATE_MINUTES = 1.0  # the absence package's own late-start deadline (a per-package threshold)
VISIT_RATE = 10.0  # measured clock-outs per second
SETTLE_SECONDS = 10.0  # how long to wait for the last alerts before counting the rest as lost


@dataclass
class Measured:
    clock_out: list[float] = field(default_factory=list)  # seconds, one per alert received
    deadline: list[float] = field(default_factory=list)
    clock_out_lost: int = 0
    deadline_lost: int = 0
    background_rate: float = 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n p / 100), at least 1
    return ordered[int(rank) - 1]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _event(event_type: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {"event_id": f"lat-{uuid.uuid4().hex}", "type": event_type, "occurred_at": _iso(at), **payload}


def _package(package_id: str, at: datetime, thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    return _event("package.approved", at, package_id=package_id, commissioner_id=COMMISSIONER,
                  provider_id=PROVIDER, mechanism="ISF", person={"person_id": f"P-{package_id}",
                                                                 "nhs_number": "9434765919"},
                  period_start="2026-04-01", period_end="2027-03-31", budget_pence=50_000_000,
                  contingency_pence=0, plan=[{"service_type": "personal_care", "minutes_per_week": 600}],
                  rates=[{"service_type": "personal_care", "band": "day", "pence_per_hour": 3214}],
                  thresholds=thresholds or {})


def _shift(shift_id: str, package_id: str, starts: datetime, minutes: int, carers: list[str],
           at: datetime) -> dict[str, Any]:
    return _event("shift.scheduled", at, shift_id=shift_id, package_id=package_id, provider_id=PROVIDER,
                  starts_at=_iso(starts), ends_at=_iso(starts + timedelta(minutes=minutes)),
                  service_type="personal_care", carers_required=1, carer_ids=carers)


def _clock(direction: str, shift_id: str, package_id: str, carer: str, at: datetime) -> dict[str, Any]:
    return _event(f"visit.clock_{direction}", at, shift_id=shift_id, package_id=package_id,
                  provider_id=PROVIDER, carer_id=carer, method="nfc")


def setup_events(visits: int, absences: int, first_deadline: datetime,
                 spacing: timedelta) -> tuple[list[dict[str, Any]], dict[str, datetime]]:
    """Registrations, packages, the visits (already clocked in) and the unattended shifts.

    Returns the events and each unattended shift's LATE_START deadline on the processing clock.
    """
    before = SIM_START - timedelta(days=1)
    events = [
        _event("commissioner.registered", before, commissioner_id=COMMISSIONER, name="Latency Council",
               kind="local_authority"),
        _event("provider.registered", before, provider_id=PROVIDER, name="Latency Care"),
        _package(VISITS_PACKAGE, before),
        # Only LATE_START is measured: the other absence deadlines of this package are out of reach.
        _package(ABSENCE_PACKAGE, before, {"late_start_minutes": ABSENCE_LATE_MINUTES,
                                           "missed_visit_minutes": 6000}),
        *(_package(f"PKG-LAT-BG-{n}", before) for n in range(BACKGROUND_PACKAGES)),
    ]
    carers = [f"CR-LAT-V{n}" for n in range(visits)] + ["CR-LAT-A"]
    events += [_event("carer.registered", before, carer_id=c, provider_id=PROVIDER, competencies=[],
                      pay_pence_per_hour=1400) for c in carers]
    # Visits of 4 planned hours that started 5 minutes before the clock's start: any clock-out during
    # the run is far below 75% of plan (a SHORT_VISIT), and none is near its lone-worker deadline.
    visit_start = SIM_START - timedelta(minutes=5)
    for n in range(visits):
        events.append(_shift(f"SH-LAT-V{n}", VISITS_PACKAGE, visit_start, 240, [f"CR-LAT-V{n}"], before))
        events.append(_clock("in", f"SH-LAT-V{n}", VISITS_PACKAGE, f"CR-LAT-V{n}", visit_start))
    deadlines: dict[str, datetime] = {}
    for n in range(absences):
        deadline = first_deadline + spacing * n
        shift_id = f"SH-LAT-A{n}"
        deadlines[shift_id] = deadline
        starts = deadline - timedelta(minutes=ABSENCE_LATE_MINUTES)
        events.append(_shift(shift_id, ABSENCE_PACKAGE, starts, 30, ["CR-LAT-A"], before))
    return events, deadlines


class Producer:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.kafka: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self.kafka = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=2, acks=1)
        await self.kafka.start()

    async def send(self, events: Sequence[dict[str, Any]], *, wait: bool = False) -> None:
        assert self.kafka is not None
        futures = [await self.kafka.send(self.topic, json.dumps(e).encode(), key=message_key(e).encode())
                   for e in events]
        if wait:
            await asyncio.gather(*futures)

    async def stop(self) -> None:
        if self.kafka is not None:
            await self.kafka.stop()


async def background(producer: Producer, rate: float, stop: asyncio.Event, sim_now: AcceleratedClock,
                     counter: list[int]) -> None:
    """`rate` events a second: shifts scheduled for tomorrow on the background packages."""
    tick = 0.05
    started, sent = time.monotonic(), 0
    tomorrow = SIM_START + timedelta(days=1)
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate) - sent
        if due > 0:
            now = sim_now.now()
            batch = [_shift(f"SH-LAT-BG-{sent + i}", f"PKG-LAT-BG-{(sent + i) % BACKGROUND_PACKAGES}",
                            tomorrow + timedelta(minutes=(sent + i) % 600), 30, [], now) for i in range(due)]
            await producer.send(batch)
            sent += due
            counter[0] = sent
        await asyncio.sleep(tick)


async def _admin_secret(database_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        created = await create_token(conn, "admin", name="alert-latency")
        await conn.commit()
        return created.secret


def _wait_healthy(base: str, children: Sequence[Child], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        dead = [c for c in children if not c.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited: {dead[0].tail()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not become healthy in time")
        time.sleep(0.2)


async def measure(broker: Broker, database_url: str, redis_url: str, home: Path, visits: int, absences: int,
                  rate: float, label: str) -> Measured:
    topic = f"care-events-latency-{label}"
    await ensure_topic(broker.bootstrap, topic, PARTITIONS)
    secret = await _admin_secret(database_url)
    launch = datetime.now(UTC)
    clock = AcceleratedClock(SIM_START, launch + timedelta(seconds=LEAD_SECONDS), SPEED)
    port = free_port()
    env = {**os.environ, "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": database_url,
           "CAREWATCH_REDIS_URL": redis_url, "CAREWATCH_EVENTS_TOPIC": topic,
           "CAREWATCH_DEAD_LETTER_TOPIC": f"{topic}.dead-letter", "CAREWATCH_CONSUMER_GROUP": f"latency-{label}",
           "CAREWATCH_TOPIC_PARTITIONS": str(PARTITIONS), "CAREWATCH_CLOCK": clock.spec(),
           "CAREWATCH_WORKER_SESSION_TIMEOUT": "6", "PYTHONUNBUFFERED": "1"}
    children = [spawn("worker", ["worker"], env, home / f"{label}-worker.log"),
                spawn("scheduler", ["scheduler"], env, home / f"{label}-scheduler.log"),
                spawn("api", ["api", "--port", str(port)], env, home / f"{label}-api.log")]
    measured = Measured()
    producer = Producer(broker.bootstrap, topic)
    try:
        base = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_for_port, port, "127.0.0.1", 60.0)
        await asyncio.to_thread(_wait_healthy, base, children)
        await producer.start()
        # Absence deadlines from 6 s after the clock's start, spread evenly over as long as the clock-outs take.
        window = max(visits / VISIT_RATE, 10.0)
        first_deadline = SIM_START + timedelta(seconds=6 * SPEED)
        spacing = timedelta(seconds=window * SPEED / max(absences, 1))
        events, deadlines = setup_events(visits, absences, first_deadline, spacing)

        received: dict[str, float] = {}  # subject -> real arrival time of its first open alert
        url = base.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], max_queue=None) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {secret}"}}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise RuntimeError(f"the API refused the subscription: {ack}")
            query = ('subscription { alerts(filter: {kinds: ["SHORT_VISIT", "LATE_START"], statuses: ["open"]}) '
                     "{ kind subjectId shiftId } }")
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))

            async def read() -> None:
                async for raw in ws:
                    at = time.time()
                    message = json.loads(raw)
                    if message.get("type") == "next" and message["payload"].get("data"):
                        alert = message["payload"]["data"]["alerts"]
                        received.setdefault(alert["shiftId"], at)

            reader = asyncio.get_running_loop().create_task(read())
            await producer.send(events, wait=True)
            await _until_applied(database_url, visits + absences, children)
            if clock.now() >= SIM_START:
                raise RuntimeError(f"setup took longer than the {LEAD_SECONDS} s lead; the machine is too busy")

            stop, counter = asyncio.Event(), [0]
            load = asyncio.get_running_loop().create_task(background(producer, rate, stop, clock, counter))
            load_started = time.monotonic()
            await asyncio.sleep(max(0.0, clock.real_seconds((SIM_START - clock.now()).total_seconds())) + 2.0)

            produced_at: dict[str, float] = {}
            for n in range(visits):
                shift_id = f"SH-LAT-V{n}"
                produced_at[shift_id] = time.time()
                await producer.send([_clock("out", shift_id, VISITS_PACKAGE, f"CR-LAT-V{n}", clock.now())],
                                    wait=True)
                await asyncio.sleep(1 / VISIT_RATE)
            last_deadline = max(deadlines.values(), default=SIM_START)
            await asyncio.sleep(max(0.0, (last_deadline - clock.now()).total_seconds() / SPEED))
            settle = time.monotonic() + SETTLE_SECONDS
            while time.monotonic() < settle and len(received) < visits + absences:
                await asyncio.sleep(0.2)
            stop.set()
            await load
            measured.background_rate = counter[0] / max(time.monotonic() - load_started, 1e-9)
            reader.cancel()

        real_start = clock.real_start.timestamp()
        for shift_id, at in produced_at.items():
            if shift_id in received:
                measured.clock_out.append(received[shift_id] - at)
            else:
                measured.clock_out_lost += 1
        for shift_id, deadline in deadlines.items():
            if shift_id in received:
                deadline_real = real_start + (deadline - clock.sim_start).total_seconds() / SPEED
                measured.deadline.append(received[shift_id] - deadline_real)
            else:
                measured.deadline_lost += 1
        return measured
    finally:
        await producer.stop()
        for child in reversed(children):
            child.stop()


async def _until_applied(database_url: str, shifts: int, children: Sequence[Child], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT count(*) FROM shifts WHERE shift_id LIKE 'SH-LAT-%%'")
            row = await cur.fetchone()
            if row and int(row[0]) >= shifts:
                return
            dead = [c for c in children if not c.alive()]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited: {dead[0].tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not apply the setup events in time")
            await asyncio.sleep(0.2)


def _ms(x: float) -> str:
    return "-" if x != x else f"{x * 1000:7.0f}"  # nan -> "-"


def table(rows: list[tuple[str, Measured]], visits: int, absences: int) -> str:
    head = (f"{'run':>6} {'bg ev/s':>8} | clock-out -> alert (ms) {'p50':>6} {'p99':>7} {'max':>7} {'lost':>5}"
            f" | deadline -> alert (ms) {'p50':>6} {'p99':>7} {'max':>7} {'lost':>5}")
    lines = [head, "-" * len(head)]
    for label, m in rows:
        lines.append(
            f"{label:>6} {m.background_rate:8.0f} | {'':23}{_ms(percentile(m.clock_out, 50)):>6} "
            f"{_ms(percentile(m.clock_out, 99)):>7} {_ms(max(m.clock_out, default=float('nan'))):>7} "
            f"{m.clock_out_lost:>5} | {'':22}{_ms(percentile(m.deadline, 50)):>6} "
            f"{_ms(percentile(m.deadline, 99)):>7} {_ms(max(m.deadline, default=float('nan'))):>7} "
            f"{m.deadline_lost:>5}")
    if len(rows) > 1:
        def med(values: list[float]) -> float:
            return statistics.median(values) if values else float("nan")
        ms = [m for _, m in rows]
        lines.append("-" * len(head))
        lines.append(
            f"{'median':>6} {med([m.background_rate for m in ms]):8.0f} | {'':23}"
            f"{_ms(med([percentile(m.clock_out, 50) for m in ms])):>6} "
            f"{_ms(med([percentile(m.clock_out, 99) for m in ms])):>7} "
            f"{_ms(med([max(m.clock_out, default=float('nan')) for m in ms])):>7} "
            f"{sum(m.clock_out_lost for m in ms):>5} | {'':22}"
            f"{_ms(med([percentile(m.deadline, 50) for m in ms])):>6} "
            f"{_ms(med([percentile(m.deadline, 99) for m in ms])):>7} "
            f"{_ms(med([max(m.deadline, default=float('nan')) for m in ms])):>7} "
            f"{sum(m.deadline_lost for m in ms):>5}")
    p99_out = statistics.median([percentile(m.clock_out, 99) for _, m in rows])
    p99_deadline = statistics.median([percentile(m.deadline, 99) for _, m in rows])
    lines += [
        "",
        f"{visits} SHORT_VISIT clock-outs and {absences} LATE_START deadlines per run; "
        f"background: shift.scheduled events at the rate shown; clock x{SPEED:g}; sweeps every 1 s.",
        f"bar clock-out -> alert p99 < 1000 ms: {'met' if p99_out < 1.0 else 'NOT met'} ({_ms(p99_out).strip()} ms); "
        f"bar deadline -> alert p99 < 3000 ms: {'met' if p99_deadline < 3.0 else 'NOT met'} "
        f"({_ms(p99_deadline).strip()} ms)",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The `carewatch alert-latency` command."""
    settings = settings_module.load()
    check_postgres(settings.database_url)
    check_redis(settings.redis_url)
    home = Path(tempfile.mkdtemp(prefix="carewatch-latency-"))
    broker = start_broker(log_path=home / "tansu.log")
    rows: list[tuple[str, Measured]] = []
    try:
        for n in range(1, args.runs + 1):
            name = f"carewatch_latency_{uuid.uuid4().hex[:8]}"
            url = with_database(settings.database_url, name)
            ensure_database(url)
            migrate(url)
            try:
                print(f"run {n}/{args.runs}: measuring (logs in {home})", flush=True)
                measured = asyncio.run(measure(broker, url, settings.redis_url, home, args.visits, args.absences,
                                               args.background_rate, f"r{n}-{uuid.uuid4().hex[:6]}"))
            finally:
                drop_database(url)
            rows.append((str(n), measured))
            print(table([(str(n), measured)], args.visits, args.absences).splitlines()[2], flush=True)
    finally:
        broker.stop()
    print()
    print(table(rows, args.visits, args.absences))
    return 0
