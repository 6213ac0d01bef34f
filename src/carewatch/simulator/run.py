"""`carewatch simulate`: emit the feed as the (accelerated) clock reaches each event's occurred_at."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka.errors import KafkaError

from carewatch.clock import AcceleratedClock, Clock, parse_clock
from carewatch.services import ServiceUnavailable
from carewatch.settings import Settings
from carewatch.simulator.feed import generate_feed
from carewatch.simulator.options import options_from_args, parse_start
from carewatch.simulator.sinks import HttpSink, KafkaSink, PostRefused, Sink

BATCH = 500


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))


@dataclass
class Progress:
    total: int
    sent: int = 0
    sim_now: datetime | None = None

    def line(self, tz: ZoneInfo) -> str:
        when = f", sim time {self.sim_now.astimezone(tz):%a %d %b %H:%M} {tz.key}" if self.sim_now else ""
        return f"{self.sent}/{self.total} events sent{when}"


async def emit(feed: Sequence[dict[str, Any]], sink: Sink, clock: Clock | None, progress: Progress,
               report: Callable[[Progress], None] | None = None, report_every: float = 5.0) -> None:
    """Send each event once `clock` reaches its occurred_at (all at once when there is no clock)."""
    due = [_at(e) for e in feed]
    last_report = time.monotonic()
    i = 0
    while i < len(feed):
        now = clock.now() if clock else None
        j = i
        while j < len(feed) and j - i < BATCH and (now is None or due[j] <= now):
            j += 1
        if j > i:
            await sink.send(feed[i:j])
            progress.sent, i = j, j
        elif isinstance(clock, AcceleratedClock) and now is not None:
            # Sleep until the next event is due, but wake at least twice a second to report.
            await asyncio.sleep(min(0.5, max(0.01, clock.real_seconds((due[i] - now).total_seconds()))))
        else:
            await asyncio.sleep(0.1)
        progress.sim_now = now or (due[i - 1] if i else None)
        if report and time.monotonic() - last_report >= report_every:
            report(progress)
            last_report = time.monotonic()


def simulation_clock(settings: Settings, start: datetime, speed: float) -> Clock | None:
    """The shared accelerated clock when the processes run on one; else one starting now at `start`."""
    configured = parse_clock(settings.clock)
    if isinstance(configured, AcceleratedClock):
        return configured
    if speed <= 0:
        return None
    return AcceleratedClock(start, datetime.now(UTC), speed)


def _refused(exc: PostRefused) -> str:
    if exc.status == 401:
        return ("the API refused the token (401): pass --token with an admin token, or an ingest token "
                "(`carewatch token create --role ingest --scope <provider id>`)")
    if exc.status == 403:
        return f"the API refused --token for POST /events ({exc}): use an admin or an ingest token"
    return str(exc)


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    tz = ZoneInfo(settings.timezone)
    configured = parse_clock(settings.clock)
    default_start = configured.sim_start if isinstance(configured, AcceleratedClock) else None
    if default_start is not None and not args.start:
        start = default_start
    else:
        start = parse_start(args.start, datetime.now(UTC), tz)
    feed = generate_feed(options_from_args(args, start, settings.timezone))
    clock = simulation_clock(settings, start, args.speed)
    sink: Sink
    if args.target == "http":
        sink = HttpSink(args.api_url, args.token)
        where = f"{args.api_url.rstrip('/')}/events"
    else:
        sink = KafkaSink(settings.kafka_bootstrap, settings.events_topic, settings.topic_partitions)
        where = f"topic {settings.events_topic} at {settings.kafka_url}"
    pace = f"{args.speed:g} sim s per real s" if clock else "as fast as possible"
    print(f"simulate: {len(feed)} events (seed {args.seed}, {args.packages} packages, {args.days:g} days "
          f"from {start.astimezone(tz):%Y-%m-%d %H:%M %Z}) to {where}, {pace}", flush=True)
    progress = Progress(len(feed))

    async def main() -> None:
        await sink.start()
        try:
            await emit(feed, sink, clock, progress, lambda p: print(f"simulate: {p.line(tz)}", flush=True))
        finally:
            await sink.stop()

    try:
        asyncio.run(main())
    except httpx.TransportError as exc:
        raise ServiceUnavailable(f"the API did not answer at {args.api_url} ({exc or type(exc).__name__}): "
                                 "start `carewatch api`, or pass --api-url") from None
    except PostRefused as exc:
        raise ServiceUnavailable(_refused(exc)) from None
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka at {settings.kafka_url} stopped taking events ({exc}); "
                                 f"{progress.line(tz)}. Start the broker again and rerun: events are "
                                 "idempotent by event_id") from None
    except KeyboardInterrupt:
        print(f"simulate: stopped, {progress.line(tz)}", flush=True)
        return 130
    print(f"simulate: done, {progress.line(tz)}", flush=True)
    return 0
