"""`carewatch worker`: check the services, create the topics, then run the faust worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

import faust
import psycopg

from carewatch.alerts.bus import AlertBus, Channels, PublishQueue
from carewatch.alerts.data_version import DataVersion, batch_listener, data_version_channel
from carewatch.clock import parse_clock
from carewatch.pipeline.processor import BatchProcessor
from carewatch.services import ServiceUnavailable, check_kafka, check_postgres
from carewatch.settings import Settings
from carewatch.stream.agents import register_agents, topic_dead_letters
from carewatch.stream.app import create_app, ensure_topics, make_topics
from carewatch.stream.lifespan import WorkerResources

log = logging.getLogger(__name__)


def check_schema(database_url: str) -> None:
    """Say clearly when the database exists but `carewatch migrate` has not been run."""
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            row = conn.execute("SELECT to_regclass('public.shift_ledger') IS NOT NULL").fetchone()
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"cannot use the database: {str(exc).strip().splitlines()[0]}. "
                                 "Run `carewatch migrate` first.") from exc
    if not row or not row[0]:
        raise ServiceUnavailable("the database has no Carewatch tables: run `carewatch migrate` first")


def build_worker_app(settings: Settings) -> tuple[faust.App, BatchProcessor, WorkerResources]:
    """The faust app with its agent and timer, the processor they share, and the resources the app
    opens on start and closes on stop."""
    app = create_app(settings)
    topics = make_topics(app, settings)
    resources = WorkerResources.for_settings(settings)
    resources.attach(app)
    processor = BatchProcessor(resources.pool, topic_dead_letters(topics), parse_clock(settings.clock),
                               hold_limit_seconds=settings.hold_limit_seconds)
    # Alerts changed by a batch are published on Redis after its commit, in a task of their own so
    # that the next batch does not wait for Redis (alerts/bus.PublishQueue).
    bus = AlertBus(resources.redis, Channels.for_settings(settings))
    resources.publisher = PublishQueue(bus)
    processor.listeners.append(resources.publisher)
    # And that what queries read changed, so that API processes empty their response caches (announced
    # by a task of its own too, coalesced: a batch never waits for it).
    resources.announcer = batch_listener(DataVersion(resources.redis, data_version_channel(settings), "worker"))
    processor.listeners.append(resources.announcer)
    register_agents(app, settings, topics, processor)
    return app, processor, resources


# The collector's youngest generation is examined every GC_YOUNG allocations (CPython's default, 700,
# runs it hundreds of times a batch, with thousands of event payloads alive): at the default the
# collector took about 15% of the worker's CPU time (docs/throughput.md).
GC_YOUNG = 50_000
GC_OLDER = (20, 10)


def tune_gc() -> None:
    """Move what start-up made (modules, the faust app) out of the collector's sight and collect the
    young generation less often; cycles are still collected, only in fewer, larger passes."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *GC_OLDER)


def run_worker(settings: Settings) -> int:
    """Run the stream worker until stopped (Ctrl-C or SIGTERM); returns the exit status."""
    check_postgres(settings.database_url)
    check_schema(settings.database_url)
    check_kafka(settings.kafka_url)
    if settings.worker_metrics_port:
        from carewatch.metrics import serve_metrics

        serve_metrics(settings.worker_metrics_port, settings.metrics_host)
    loop = asyncio.new_event_loop()
    try:
        created = loop.run_until_complete(ensure_topics(settings))
    finally:
        loop.close()
    if created:
        print(f"worker: created topics {', '.join(created)}", flush=True)
    asyncio.set_event_loop(asyncio.new_event_loop())
    app, _, _ = build_worker_app(settings)
    print(f"worker: consuming {settings.events_topic} at {settings.kafka_url} as group "
          f"{settings.consumer_group}", flush=True)
    # Logging is carewatch.logs' (set up by the command line): faust's own set-up would add a coloured
    # handler and a spinner, whose escape codes end up in log files.
    worker = faust.Worker(app, quiet=True, redirect_stdouts=False, override_logging=False)
    worker.spinner = None  # it writes cursor codes to standard output even when that is a file
    tune_gc()
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    from carewatch.settings import load

    sys.exit(run_worker(load()))
