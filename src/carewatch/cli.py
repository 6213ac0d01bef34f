"""The one `carewatch` command line tool: each subcommand starts one process or job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from carewatch import settings as settings_module
from carewatch.services import ServiceUnavailable


def _migrate(args: argparse.Namespace) -> int:
    from carewatch.schema.migrate import ensure_database, migrate
    from carewatch.services import check_postgres

    settings = settings_module.load()
    check_postgres(settings.database_url)
    if ensure_database(settings.database_url):
        print("migrate: created the database", flush=True)
    migrate(settings.database_url, log=True)
    return 0


def _broker(args: argparse.Namespace) -> int:
    import time

    from carewatch.services import start_broker

    broker = start_broker(args.port)
    print(f"broker: tansu listening at {broker.kafka_url} (memory storage); Ctrl-C stops it", flush=True)
    try:
        while broker.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from carewatch.stream.worker import run_worker

    return run_worker(settings_module.load())


def _api(args: argparse.Namespace) -> int:
    from carewatch.web import run_api

    return run_api(settings_module.load(), host=args.host, port=args.port)


def _scheduler(args: argparse.Namespace) -> int:
    from carewatch.alerts.scheduler import run_scheduler

    return run_scheduler(settings_module.load())


def _simulate(args: argparse.Namespace) -> int:
    from carewatch.simulator.run import run_simulate

    return run_simulate(settings_module.load(), args)


def _demo(args: argparse.Namespace) -> int:
    from carewatch.demo import run_demo

    return run_demo(args)


def _bench(args: argparse.Namespace) -> int:
    from carewatch.bench import run_bench

    return run_bench(args)


def _faults(args: argparse.Namespace) -> int:
    from carewatch.faults.suite import run_faults

    return run_faults(args)


def _token(args: argparse.Namespace) -> int:
    from carewatch.security.token_cli import run_token_command

    return run_token_command(settings_module.load(), args)


def _thresholds(args: argparse.Namespace) -> int:
    from carewatch.alerts.thresholds_cli import run_thresholds_command

    return run_thresholds_command(settings_module.load(), args)


def _alert_latency(args: argparse.Namespace) -> int:
    from carewatch.latency import run

    return run(args)


def _add_simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same feed")
    parser.add_argument("--packages", type=int, default=36, help="care packages to simulate")
    parser.add_argument("--providers", type=int, default=4, help="providers delivering them")
    parser.add_argument("--days", type=float, default=1.0, help="simulated days of care")
    parser.add_argument("--start", default=None,
                        help="simulated start instant (RFC 3339); default: the coming Monday 06:00 Europe/London")
    parser.add_argument("--speed", type=float, default=120.0,
                        help="simulated seconds per real second (0: as fast as possible)")
    parser.add_argument("--late-rate", type=float, default=0.10, help="share of visits that start late")
    parser.add_argument("--miss-rate", type=float, default=0.03, help="share of visits never attended")
    parser.add_argument("--short-rate", type=float, default=0.06, help="share of visits cut short")
    parser.add_argument("--cancel-rate", type=float, default=0.04, help="share of visits cancelled")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carewatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="create the database if needed and apply the migrations")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("broker", help="run a local tansu Kafka-compatible broker (memory storage)")
    p.add_argument("--port", type=int, default=9092)
    p.set_defaults(func=_broker)

    p = sub.add_parser("worker", help="run the stream worker (faust) on the care-events topic")
    p.set_defaults(func=_worker)

    p = sub.add_parser("api", help="serve GraphQL, POST /events, /healthz and /metrics")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=_api)

    p = sub.add_parser("scheduler", help="run the deadline sweeps and periodic jobs")
    p.set_defaults(func=_scheduler)

    p = sub.add_parser("simulate", help="feed a seeded synthetic care day to Kafka or POST /events")
    _add_simulation_options(p)
    p.add_argument("--target", choices=["kafka", "http"], default="kafka")
    p.add_argument("--api-url", default="http://127.0.0.1:8000", help="API base URL for --target http")
    p.add_argument("--token", default=None, help="bearer token for --target http")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("demo", help="run broker, worker, API, scheduler and the simulator together")
    _add_simulation_options(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--embedded", action="store_true",
                   help="use an embedded PostgreSQL and Redis (from PyPI wheels) even when the machine has "
                        "its own; without this they are used only where none answers")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many real seconds (0: run until Ctrl-C)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("bench", help="throughput benchmark of the real worker against the bare consumer ceiling")
    p.add_argument("--events", type=int, default=60000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workers", type=int, default=1, help="worker processes in the one consumer group")
    p.set_defaults(func=_bench)
    p = sub.add_parser("faults", help="the fault suite: one feed run cleanly and under faults, on services of "
                                      "its own; every figure and alert must be equal (also ops/faults)")
    p.add_argument("--short", action="store_true", help="a smaller feed and four faults (as in the tests)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--packages", type=int, default=0, help="simulated packages (default 360; 48 with --short)")
    p.add_argument("--providers", type=int, default=0, help="providers (default 6; 4 with --short)")
    p.add_argument("--overlaps", type=int, default=None,
                   help="injected visits overlapping another of the same carer (default 30; 8 with --short)")
    p.add_argument("--rate", type=float, default=150.0, help="messages produced per second")
    p.add_argument("--postgres-outage", type=float, default=None,
                   help="seconds PostgreSQL stays stopped (default 30; 8 with --short)")
    p.add_argument("--stall-seconds", type=float, default=90.0,
                   help="give up waiting for the worker after this long without progress (and fail)")
    p.add_argument("--no-hostile", action="store_true",
                   help="leave out issue 8's out-of-range instants and cross-provider writes")
    p.add_argument("--home", default=None, help="folder for logs and snapshots (default .carewatch/faults/<time>)")
    p.set_defaults(func=_faults)

    p = sub.add_parser("token", help="create, list or revoke API tokens (the secret is shown once)")
    token_sub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = token_sub.add_parser("create", help="create a token; prints the secret alone on standard output")
    t.add_argument("--role", required=True, help="admin, commissioner, safeguarding, provider or ingest")
    t.add_argument("--scope", default=None, help="commissioner id or provider id (every role but admin)")
    t.add_argument("--name", default="", help="who or what the token is for")
    token_sub.add_parser("list", help="list tokens (never their secrets)")
    t = token_sub.add_parser("revoke", help="revoke a token by id")
    t.add_argument("id", type=int)
    p.set_defaults(func=_token)

    p = sub.add_parser("thresholds", help="set or show a commissioner's alert threshold overrides")
    th_sub = p.add_subparsers(dest="thresholds_command", required=True, metavar="ACTION")
    t = th_sub.add_parser("set", help="merge name=value overrides, e.g. late_start_minutes=20")
    t.add_argument("--commissioner", required=True, help="commissioner id")
    t.add_argument("assignments", nargs="*", metavar="NAME=VALUE")
    t.add_argument("--clear", action="append", metavar="NAME", help="drop an override (back to the default)")
    t = th_sub.add_parser("show", help="print the commissioner's overrides as JSON")
    t.add_argument("--commissioner", required=True, help="commissioner id")
    p.set_defaults(func=_thresholds)

    p = sub.add_parser("alert-latency",
                       help="measure clock-out -> alert and deadline -> absence alert delivery under load")
    p.add_argument("--visits", type=int, default=200, help="clock-outs that each raise a SHORT_VISIT alert")
    p.add_argument("--absences", type=int, default=100, help="shifts left without a clock-in (LATE_START)")
    p.add_argument("--background-rate", type=float, default=1000.0, help="background events per second")
    p.add_argument("--runs", type=int, default=3, help="repeat runs; the table gives each and the median")
    p.set_defaults(func=_alert_latency)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ServiceUnavailable as exc:
        print(f"carewatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
