"""`carewatch demo`: broker, worker, API and scheduler as child processes, fed a simulated care day."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from websockets.typing import Subprotocol

from carewatch.clock import AcceleratedClock
from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.embedded import EmbeddedServices, start_postgres, start_redis
from carewatch.schema.migrate import drop_database, ensure_database, migrate
from carewatch.services import Broker, ServiceUnavailable, check_postgres, check_redis, start_broker
from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import options_from_args, parse_start
from carewatch.simulator.run import Progress, emit
from carewatch.simulator.sinks import KafkaSink

DEMO_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/carewatch_demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FIGURES = "{ packages(first: 500) { edges { node { id rolling7Days { actualMinutes } } } } }"
OPEN_ALERTS = '{ alerts(first: 500, filter: {statuses: ["open"]}) { edges { node { id } } } }'


@dataclass
class Child:
    """A Carewatch process started by the demo or the benchmark, its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn(name: str, command: list[str], env: Mapping[str, str], log: Path) -> Child:
    """Start `python -m carewatch <command>` in its own session, so a Ctrl-C reaches only the demo, which
    then stops its children in order."""
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "carewatch", *command], env=dict(env), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return Child(name, process, log)


def _terminate_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _demo_database(env: Mapping[str, str]) -> tuple[str, bool]:
    """The database URL and whether it is the demo's own (which is reset on each run)."""
    given = env.get("CAREWATCH_DATABASE_URL", "").strip()
    return (given, False) if given else (DEMO_DATABASE_URL, True)


def _admin_token(env: Mapping[str, str], home: Path) -> str | None:
    """An admin token for the demo's own GraphQL figures; None (and a note) if tokens are not available."""
    try:
        done = subprocess.run([sys.executable, "-m", "carewatch", "token", "create", "--role", "admin"],
                              env=dict(env), capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return None
    (home / "token.log").write_bytes(done.stderr)
    secret = done.stdout.decode().strip()
    return secret if done.returncode == 0 and secret else None


async def _graphql(client: httpx.AsyncClient, query: str) -> dict[str, Any] | None:
    try:
        response = await client.post("/graphql", json={"query": query})
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else None


async def live_figures(client: httpx.AsyncClient) -> str:
    """A line of figures read back from the API; says 'n/a' for any query that fails, never raises."""
    parts = []
    data = await _graphql(client, FIGURES)
    try:
        nodes = [edge["node"] for edge in data["packages"]["edges"]] if data else None
    except (KeyError, TypeError):
        nodes = None
    if nodes is None:
        parts.append("packages n/a")
    else:
        minutes = sum(float(n["rolling7Days"]["actualMinutes"] or 0) for n in nodes)
        parts.append(f"{len(nodes)} packages, {minutes:,.0f} carer-minutes delivered (last 7 days)")
    alerts = await _graphql(client, OPEN_ALERTS)
    try:
        parts.append(f"{len(alerts['alerts']['edges'])} open alerts" if alerts else "alerts n/a")
    except (KeyError, TypeError):
        parts.append("alerts n/a")
    return ", ".join(parts)


async def wait_healthy(base_url: str, children: list[Child], timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if any(not c.alive() for c in children):
                return False
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    return False


ALERTS_SUBSCRIPTION = "subscription { alerts { kind severity status message } }"


async def print_alerts(ws_url: str, token: str) -> None:
    """Print each alert as a safeguarding lead's subscription receives it (graphql-transport-ws)."""
    from websockets.asyncio.client import connect

    while True:
        try:
            async with connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
                await ws.send(json.dumps({"type": "connection_init",
                                          "payload": {"authorization": f"Bearer {token}"}}))
                await ws.send(json.dumps({"id": "alerts", "type": "subscribe",
                                          "payload": {"query": ALERTS_SUBSCRIPTION}}))
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    alert = (message.get("payload") or {}).get("data", {}).get("alerts") \
                        if message.get("type") == "next" else None
                    if alert:
                        print(f"alert: {alert['severity']:<8} {alert['kind']:<20} {alert['status']:<13} "
                              f"{alert['message']}", flush=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the API restarting must not stop the demo: reconnect
            print(f"demo: alert subscription interrupted ({exc}); reconnecting", flush=True)
            await asyncio.sleep(2)


async def _live(args: argparse.Namespace, broker: Broker, env: Mapping[str, str], clock: AcceleratedClock,
                children: list[Child], token: str | None, tz: ZoneInfo) -> int:
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{host}:{args.port}"
    if not await wait_healthy(base, children):
        for child in children:
            if not child.alive() or child.name == "api":
                print(f"demo: {child.name} {'exited' if not child.alive() else 'did not answer /healthz'}; "
                      f"last lines of {child.log}:\n{child.tail()}", file=sys.stderr, flush=True)
        return 1
    print(f"demo: GraphQL at http://{args.host}:{args.port}/graphql (open it in a browser for GraphiQL)",
          flush=True)
    if token:
        print(f"demo: admin token for the Authorization header: Bearer {token}", flush=True)
    feed = generate_feed(options_from_args(args, clock.sim_start, tz.key))
    print(f"demo: simulating {len(feed)} events: {args.packages} packages, {args.providers} providers, "
          f"{args.days:g} days from {clock.sim_start.astimezone(tz):%a %d %b %Y %H:%M %Z}, "
          f"{args.speed:g} simulated seconds per real second", flush=True)
    sink = KafkaSink(broker.bootstrap, env["CAREWATCH_EVENTS_TOPIC"], int(env["CAREWATCH_TOPIC_PARTITIONS"]))
    await sink.start()
    progress = Progress(len(feed))
    simulation = asyncio.create_task(emit(feed, sink, clock, progress))
    alert_printer = asyncio.create_task(print_alerts(f"ws://{host}:{args.port}/graphql", token)) if token else None
    started = time.monotonic()
    next_report = started + 10
    finished_said = False
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=5) as client:
            while not args.duration or time.monotonic() - started < args.duration:
                dead = [c for c in children if not c.alive()]
                if dead:
                    for child in dead:
                        print(f"demo: {child.name} stopped unexpectedly; last lines of {child.log}:\n"
                              f"{child.tail()}", file=sys.stderr, flush=True)
                    return 1
                if simulation.done() and not finished_said:
                    simulation.result()  # a failure of the feed surfaces here
                    until = "until the duration ends" if args.duration else "until Ctrl-C"
                    print(f"demo: the simulated feed is complete; services keep running {until}", flush=True)
                    finished_said = True
                if time.monotonic() >= next_report:
                    figures = await live_figures(client)
                    sim_now = clock.now().astimezone(tz)
                    print(f"demo: sim {sim_now:%a %H:%M}, {progress.sent}/{progress.total} events sent; "
                          f"{figures}", flush=True)
                    next_report = time.monotonic() + 10
                await asyncio.sleep(0.25)
    finally:
        simulation.cancel()
        if alert_printer:
            alert_printer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await alert_printer
        # Its failure, if any, was reported above; we are stopping anyway.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await simulation
        await sink.stop()
    return 0


def _services(args: argparse.Namespace, env: Mapping[str, str], home: Path,
              embedded: EmbeddedServices) -> tuple[str, bool, str]:
    """The database URL (and whether it is the demo's own) and the Redis URL to use.

    The machine's PostgreSQL and Redis when they answer; embedded ones (carewatch/embedded.py) with
    --embedded, or when one does not answer and no URL for it was given. A URL that was given and
    does not answer is an error that says so: the demo never silently uses another database.
    """
    database_url, own_database = _demo_database(env)
    given_redis = env.get("CAREWATCH_REDIS_URL", "").strip()
    redis_url = given_redis or DEFAULT_REDIS_URL
    try:
        if args.embedded:
            raise ServiceUnavailable("--embedded")
        check_postgres(database_url)
    except ServiceUnavailable as exc:
        if not own_database:
            raise
        reason = "as asked" if args.embedded else f"because {exc}"
        print(f"demo: starting an embedded PostgreSQL {reason}; its data is in {home / 'postgres'}", flush=True)
        database_url = start_postgres(home, embedded, "carewatch_demo")
    try:
        if args.embedded:
            raise ServiceUnavailable("--embedded")
        check_redis(redis_url)
    except ServiceUnavailable as exc:
        if given_redis:
            raise
        reason = "as asked" if args.embedded else f"because {exc}"
        redis_url = start_redis(home, embedded)
        print(f"demo: started an embedded Redis at {redis_url} {reason}", flush=True)
    return database_url, own_database, redis_url


def run_demo(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    tz = ZoneInfo(env.get("CAREWATCH_TIMEZONE", "").strip() or DEFAULT_TIMEZONE)
    home = Path.cwd() / ".carewatch"
    home.mkdir(exist_ok=True)
    embedded = EmbeddedServices()
    try:
        database_url, own_database, redis_url = _services(args, env, home, embedded)
    except ServiceUnavailable as exc:
        embedded.stop()
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        return _run(args, env, tz, home, database_url, own_database, redis_url)
    finally:
        embedded.stop()


def _run(args: argparse.Namespace, env: dict[str, str], tz: ZoneInfo, home: Path, database_url: str,
         own_database: bool, redis_url: str) -> int:
    if own_database:
        print("demo: starting from a clean carewatch_demo database "
              "(set CAREWATCH_DATABASE_URL to use another)", flush=True)
        drop_database(database_url)
    ensure_database(database_url)
    migrate(database_url)
    print(f"demo: database ready (migrations applied); logs under {home}/", flush=True)

    previous = signal.signal(signal.SIGTERM, _terminate_on_sigterm)
    broker: Broker | None = None
    children: list[Child] = []
    try:
        broker = start_broker(log_path=home / "tansu.log")
        print(f"demo: Kafka-compatible broker (tansu) at {broker.kafka_url}", flush=True)
        sim_start = parse_start(args.start, datetime.now(UTC), tz)
        # Every process reads this one clock, so all agree what simulated "now" is.
        clock = AcceleratedClock(sim_start, datetime.now(UTC), args.speed if args.speed > 0 else 120.0)
        env.update({
            "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": database_url,
            "CAREWATCH_REDIS_URL": redis_url, "CAREWATCH_CLOCK": clock.spec(), "PYTHONUNBUFFERED": "1",
            "CAREWATCH_EVENTS_TOPIC": env.get("CAREWATCH_EVENTS_TOPIC") or "care-events",
            "CAREWATCH_TOPIC_PARTITIONS": env.get("CAREWATCH_TOPIC_PARTITIONS") or "4",
            "CAREWATCH_ENV": env.get("CAREWATCH_ENV") or "development",
        })
        token = _admin_token(env, home)
        if token is None:
            print(f"demo: could not create an admin token (see {home}/token.log); live figures may read n/a",
                  flush=True)
        children.append(spawn("worker", ["worker"], env, home / "worker.log"))
        children.append(spawn("api", ["api", "--host", args.host, "--port", str(args.port)], env,
                              home / "api.log"))
        if importlib.util.find_spec("carewatch.alerts.scheduler") is not None:
            children.append(spawn("scheduler", ["scheduler"], env, home / "scheduler.log"))
        else:
            print("demo: note: carewatch.alerts.scheduler is not there yet, so absence alerts are not swept",
                  flush=True)
        names = ", ".join(c.name for c in children)
        print(f"demo: started {names} (clock {clock.spec()}); waiting for the API", flush=True)
        return asyncio.run(_live(args, broker, env, clock, children, token, tz))
    except KeyboardInterrupt:
        print("demo: stopping", flush=True)
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if broker is not None:
            broker.stop()
        signal.signal(signal.SIGTERM, previous)
        print("demo: stopped the services and the broker", flush=True)
