"""`carewatch demo`: broker, worker, API and scheduler as child processes, fed a simulated care day.

A first hour in one command: it refuses a busy port or database before touching anything,
backfills a simulated week at full speed (so rolling 7-day figures are whole from the start),
then goes live at --speed, printing ready tokens for each role, the settings other commands need,
the simulated time and each alert as it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from websockets.typing import Subprotocol

from carewatch.clock import AcceleratedClock
from carewatch.domain.model import DEFAULT_TIMEZONE
from carewatch.embedded import EmbeddedServices, start_postgres, start_redis
from carewatch.firsthour import (
    APPLICATION,
    DemoToken,
    claim_database,
    environment,
    make_tokens,
    scopes_in,
    token_lines,
    write_env_file,
)
from carewatch.schema.migrate import drop_database, ensure_database, migrate
from carewatch.services import (
    Broker,
    ServiceUnavailable,
    check_port_free,
    check_postgres,
    check_redis,
    start_broker,
)
from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import options_from_args, parse_start
from carewatch.simulator.run import Progress, emit
from carewatch.simulator.sinks import KafkaSink

DEMO_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/carewatch_demo"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
FIGURES = ("{ packages(first: 500) { edges { node { id rolling7Days { plannedMinutes actualMinutes } } } } }")
OPEN_ALERTS = '{ alerts(first: 500, filter: {statuses: ["open"]}) { edges { node { id } } } }'
BACKFILL_TIMEOUT_SECONDS = 180.0


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
        planned = sum(float(n["rolling7Days"]["plannedMinutes"] or 0) for n in nodes)
        share = f" = {minutes / planned:.0%} of plan" if planned else ""
        parts.append(f"{len(nodes)} packages, {minutes:,.0f} carer-minutes delivered (last 7 days){share}")
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


async def print_alerts(ws_url: str, token: str, clock: AcceleratedClock | None = None,
                       tz: ZoneInfo | None = None) -> None:
    """Print each alert as a subscription receives it (graphql-transport-ws), at its simulated time."""
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
                        when = f"[sim {clock.now().astimezone(tz):%a %H:%M}] " if clock and tz else ""
                        print(f"alert: {when}{alert['severity']:<8} {alert['kind']:<20} {alert['status']:<13} "
                              f"{alert['message']}", flush=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the API restarting must not stop the demo: reconnect
            print(f"demo: alert subscription interrupted ({exc}); reconnecting", flush=True)
            await asyncio.sleep(2)


def _preflight(args: argparse.Namespace) -> None:
    """What must hold before the demo touches anything: its port is free (another demo is not there)."""
    check_port_free(args.host, args.port,
                    f"another demo or API is there? stop it (Ctrl-C in its terminal), or pass --port {args.port + 1}")


def run_demo(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    tz = ZoneInfo(env.get("CAREWATCH_TIMEZONE", "").strip() or DEFAULT_TIMEZONE)
    try:
        _preflight(args)
    except ServiceUnavailable as exc:
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 2
    home = Path.cwd() / ".carewatch"  # made once the demo may start (the embedded servers make it earlier)
    embedded = EmbeddedServices()
    try:
        database_url, own_database, redis_url = _services(args, env, home, embedded)
        # Held until the demo stops: a second demo on this database is refused before it changes anything.
        claim = claim_database(database_url, own=own_database, address=f"http://{args.host}:{args.port}")
    except ServiceUnavailable as exc:
        embedded.stop()
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 2
    home.mkdir(exist_ok=True)
    try:
        return _run(args, env, tz, home, database_url, own_database, redis_url)
    finally:
        claim.close()
        embedded.stop()


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


def _feeds(args: argparse.Namespace, live_start: datetime, tz: ZoneInfo
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The simulated feed split at `live_start`: the backfilled days before it, and the live days."""
    backfill_days = max(0.0, args.backfill_days)
    options = options_from_args(args, live_start, tz.key)
    options = replace(options, start=live_start - timedelta(days=backfill_days), days=backfill_days + args.days)
    feed = generate_feed(options)
    cut = live_start.astimezone(UTC).isoformat().replace("+00:00", "Z")
    # occurred_at is always UTC with a Z, to the second (simulator/feed.py): text order is time order.
    return [e for e in feed if e["occurred_at"] < cut], [e for e in feed if e["occurred_at"] >= cut]


async def _seen(database_url: str, event_ids: list[str]) -> int:
    """How many of these events the worker has dealt with: applied, held or rejected."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            """SELECT count(DISTINCT event_id) FROM (
                   SELECT event_id FROM events WHERE event_id = ANY(%(ids)s)
                   UNION ALL SELECT event_id FROM held_events WHERE event_id = ANY(%(ids)s)
                   UNION ALL SELECT event_id FROM rejected_events WHERE event_id = ANY(%(ids)s)) seen""",
            {"ids": event_ids})
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def backfill(sink: KafkaSink, feed: list[dict[str, Any]], database_url: str, children: list[Child],
                   since: datetime, days: float, tz: ZoneInfo) -> bool:
    """Send the backfill at full speed and wait until the worker has dealt with every event of it."""
    if not feed:
        return True
    print(f"demo: backfilling {len(feed):,} events (registrations, and {days:g} simulated days of care from "
          f"{since.astimezone(tz):%a %d %b %H:%M}) at full speed, so that rolling 7-day figures are whole",
          flush=True)
    started = time.monotonic()
    await sink.send(feed)
    ids = [str(e["event_id"]) for e in feed]
    next_report = started + 10
    while (seen := await _seen(database_url, ids)) < len(ids):
        if any(not c.alive() for c in children) or time.monotonic() - started > BACKFILL_TIMEOUT_SECONDS:
            print(f"demo: the backfill stalled at {seen:,}/{len(ids):,} events", file=sys.stderr, flush=True)
            return False
        if time.monotonic() >= next_report:
            print(f"demo: backfill {seen:,}/{len(ids):,} events applied", flush=True)
            next_report = time.monotonic() + 10
        await asyncio.sleep(0.3)
    print(f"demo: backfill applied in {time.monotonic() - started:.1f} s", flush=True)
    return True


def _announce(args: argparse.Namespace, env: Mapping[str, str], home: Path, tokens: list[DemoToken]) -> None:
    """The first hour's instructions: where to look, the tokens, and the settings for other commands."""
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{host}:{args.port}"
    safeguarding = next((t for t in tokens if t.role == "safeguarding"), None)
    lines = [f"demo: GraphQL at {base}/graphql (open it in a browser for GraphiQL)"]
    if safeguarding:
        lines.append(f"demo: alert board: open {base}/board and paste the safeguarding token "
                     f"({safeguarding.scope})")
    lines.append('demo: purchase to pay: query invoices(filter: {status: "DISPUTED"}) and alerts(filter: '
                 '{kinds: ["BUDGET_AT_RISK", "INVOICE_DISPUTED"]}) (a corrected invoice keeps its history)')
    if tokens:
        lines.append("demo: ready tokens (Authorization: Bearer <token>), each on a real id of the simulated data:")
        lines += token_lines(tokens)
    lines.append(f"demo: to use the other carewatch commands on this demo, in another terminal run "
                 f"`source {home / 'env'}`, or:")
    lines += [f"  export {k}={shlex.quote(v)}" for k, v in environment(env).items()]
    print("\n".join(lines), flush=True)


async def _live(args: argparse.Namespace, broker: Broker, env: dict[str, str], clock: AcceleratedClock,
                children: list[Child], tz: ZoneInfo, home: Path) -> int:
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    base = f"http://{host}:{args.port}"
    backfill_feed, feed = _feeds(args, clock.sim_start, tz)
    sink = KafkaSink(broker.bootstrap, env["CAREWATCH_EVENTS_TOPIC"], int(env["CAREWATCH_TOPIC_PARTITIONS"]))
    await sink.start()
    simulation: asyncio.Task[None] | None = None
    alert_printer: asyncio.Task[None] | None = None
    try:
        since = clock.sim_start - timedelta(days=max(0.0, args.backfill_days))
        if not await backfill(sink, backfill_feed, env["CAREWATCH_DATABASE_URL"], children, since,
                              max(0.0, args.backfill_days), tz):
            _report_dead(children)
            return 1
        # The sweeps start once the backfill is in, so they never judge a half-loaded week.
        if importlib.util.find_spec("carewatch.alerts.scheduler") is not None:
            children.append(spawn("scheduler", ["scheduler"], _child_env(env, "scheduler"), home / "scheduler.log"))
        if not await wait_healthy(base, children):
            for child in children:
                if not child.alive() or child.name == "api":
                    print(f"demo: {child.name} {'exited' if not child.alive() else 'did not answer /healthz'}; "
                          f"last lines of {child.log}:\n{child.tail()}", file=sys.stderr, flush=True)
            return 1
        commissioner, provider = scopes_in(backfill_feed or feed)
        tokens = await make_tokens(env["CAREWATCH_DATABASE_URL"], commissioner, provider)
        write_env_file(home / "env", env, tokens)
        _announce(args, env, home, tokens)
        admin = next(t.secret for t in tokens if t.role == "admin")
        sim_now = clock.now().astimezone(tz)
        print(f"demo: live from simulated {sim_now:%a %d %b %Y %H:%M %Z}: {len(feed):,} events over {args.days:g} "
              f"day(s) of {args.packages} packages and {args.providers} providers, {clock.speed:g} simulated "
              f"seconds per real second (a simulated hour every {3600 / clock.speed:.0f} s)", flush=True)
        progress = Progress(len(feed))
        simulation = asyncio.create_task(emit(feed, sink, clock, progress))
        alert_printer = asyncio.create_task(print_alerts(f"ws://{host}:{args.port}/graphql", admin, clock, tz))
        return await _watch(args, base, admin, clock, children, simulation, progress, tz)
    finally:
        for task in (simulation, alert_printer):
            if task is not None:
                task.cancel()
                # Its failure, if any, was reported; we are stopping anyway.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await sink.stop()


async def _watch(args: argparse.Namespace, base: str, token: str, clock: AcceleratedClock, children: list[Child],
                 simulation: asyncio.Task[None], progress: Progress, tz: ZoneInfo) -> int:
    """Report the simulated time and the figures every 10 s until the duration ends or a child dies."""
    started = time.monotonic()
    next_report = started + 10
    finished_said = False
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:
        while not args.duration or time.monotonic() - started < args.duration:
            dead = [c for c in children if not c.alive()]
            if dead:
                _report_dead(dead)
                return 1
            if simulation.done() and not finished_said:
                simulation.result()  # a failure of the feed surfaces here
                until = "until the duration ends" if args.duration else "until Ctrl-C"
                print(f"demo: the simulated feed is complete; services keep running {until}", flush=True)
                finished_said = True
            if time.monotonic() >= next_report:
                figures = await live_figures(client)
                print(f"demo: simulated time {clock.now().astimezone(tz):%a %d %b %H:%M %Z}; "
                      f"{progress.sent}/{progress.total} live events sent; {figures}", flush=True)
                next_report = time.monotonic() + 10
            await asyncio.sleep(0.25)
    return 0


def _report_dead(children: list[Child]) -> None:
    for child in children:
        if not child.alive():
            print(f"demo: {child.name} stopped unexpectedly; last lines of {child.log}:\n{child.tail()}",
                  file=sys.stderr, flush=True)


def _child_env(env: Mapping[str, str], name: str) -> dict[str, str]:
    """The child's environment, naming its database connections after it (a second demo says who holds them)."""
    return {**env, "PGAPPNAME": f"{APPLICATION} {name}"}


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
        children.append(spawn("worker", ["worker"], _child_env(env, "worker"), home / "worker.log"))
        children.append(spawn("api", ["api", "--host", args.host, "--port", str(args.port)],
                              _child_env(env, "api"), home / "api.log"))
        print(f"demo: started worker and api (clock {clock.spec()})", flush=True)
        return asyncio.run(_live(args, broker, env, clock, children, tz, home))
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
