"""The one `carewatch` command line tool: each subcommand starts one process or job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from carewatch import settings as settings_module
from carewatch.logs import setup_logging
from carewatch.services import (
    ServiceUnavailable,
    check_kafka,
    check_port_free,
    check_postgres,
    check_redis,
    require_database,
)
from carewatch.settings import Settings

LOGS = ("CAREWATCH_LOG_LEVEL", "CAREWATCH_LOG_FORMAT")
KAFKA = ("CAREWATCH_KAFKA_URL", "CAREWATCH_EVENTS_TOPIC", "CAREWATCH_TOPIC_PARTITIONS")
CLOCK = ("CAREWATCH_CLOCK", "CAREWATCH_TIMEZONE")

# The environment variables each command reads (its --help lists them with their defaults).
READS: dict[str, tuple[str, ...]] = {
    "migrate": ("CAREWATCH_DATABASE_URL",),
    "broker": (),
    "worker": (*KAFKA, "CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_REDIS_PREFIX",
               "CAREWATCH_DEAD_LETTER_TOPIC", "CAREWATCH_CONSUMER_GROUP", "CAREWATCH_BATCH_SIZE",
               "CAREWATCH_BATCH_WITHIN", "CAREWATCH_BATCH_IDLE_MS", "CAREWATCH_FETCH_MAX_WAIT_MS",
               "CAREWATCH_HOLD_LIMIT_SECONDS", *CLOCK,
               "CAREWATCH_WORKER_WEB_PORT", "CAREWATCH_WORKER_METRICS_PORT", "CAREWATCH_METRICS_HOST",
               "CAREWATCH_WORKER_SESSION_TIMEOUT"),
    "api": ("CAREWATCH_KAFKA_URL", "CAREWATCH_EVENTS_TOPIC", "CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL",
            "CAREWATCH_REDIS_PREFIX", *CLOCK, "CAREWATCH_ENV", "CAREWATCH_SUBSCRIBER_QUEUE",
            "CAREWATCH_METRICS_TOKEN_REQUIRED", "CAREWATCH_INGEST_RATE_PER_MINUTE", "CAREWATCH_TOKEN_CACHE_SECONDS",
            "CAREWATCH_WEBSOCKET_COMPRESSION", "CAREWATCH_MAX_QUERY_COST", "CAREWATCH_RESPONSE_CACHE_TTL_MS",
            "CAREWATCH_RESPONSE_CACHE_MB"),
    "api-load": ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_KAFKA_URL"),
    "scheduler": ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_REDIS_PREFIX", *CLOCK,
                  "CAREWATCH_SETTLE_SECONDS", "CAREWATCH_SCHEDULER_METRICS_PORT", "CAREWATCH_METRICS_HOST"),
    "simulate": (*KAFKA, *CLOCK),
    "demo": ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_TIMEZONE", "CAREWATCH_EVENTS_TOPIC",
             "CAREWATCH_TOPIC_PARTITIONS", "CAREWATCH_ENV"),
    "bench": ("CAREWATCH_DATABASE_URL",),
    "statement-bench": ("CAREWATCH_DATABASE_URL",),
    "faults": (),
    "token": ("CAREWATCH_DATABASE_URL",),
    "thresholds": ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_REDIS_PREFIX"),
    "alert-latency": ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL"),
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults after each option's meaning (none where there is no default), epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "") or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _epilog(names: Sequence[str]) -> str:
    known = {v.name: v for v in settings_module.variables()}
    lines = ["environment variables (default in brackets):"]
    for name in [*names, *LOGS]:
        v = known[name]
        lines.append(f"  {v.name:<34} {v.meaning} [{v.default}]")
    return "\n".join(lines)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.schema.migrate import MigrationError, ensure_database, migrate

    check_postgres(settings.database_url)
    if ensure_database(settings.database_url):
        print("migrate: created the database", flush=True)
    try:
        migrate(settings.database_url, log=True)
    except MigrationError as exc:
        raise ServiceUnavailable(str(exc)) from None
    return 0


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from carewatch.services import start_broker

    check_port_free("127.0.0.1", args.port, "stop the broker already there, or pass --port")
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


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.stream.worker import run_worker

    require_database(settings.database_url)
    check_redis(settings.redis_url)
    check_kafka(settings.kafka_url)
    return run_worker(settings)


def _api(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.web import run_api

    require_database(settings.database_url)
    check_redis(settings.redis_url)
    if not args.reuse_port:
        check_port_free(args.host, args.port, "stop whatever listens there (another API or demo?), or pass --port")
    return run_api(settings, host=args.host, port=args.port, reuse_port=args.reuse_port)


def _api_load(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.load.run import run_api_load

    check_postgres(settings.database_url)
    check_redis(settings.redis_url)
    return run_api_load(args, settings)


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.alerts.scheduler import run_scheduler

    require_database(settings.database_url)
    check_redis(settings.redis_url)
    return run_scheduler(settings)


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.simulator.run import run_simulate

    if args.target == "kafka":
        check_kafka(settings.kafka_url)
    return run_simulate(settings, args)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.demo import run_demo

    return run_demo(args)


def _statement_bench(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.statement_bench import run_statement_bench

    return run_statement_bench(args)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.bench import run_bench

    return run_bench(args)


def _faults(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.faults.suite import run_faults

    return run_faults(args)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.security.token_cli import run_token_command

    require_database(settings.database_url)
    return run_token_command(settings, args)


def _thresholds(args: argparse.Namespace, settings: Settings) -> int:
    from carewatch.alerts.thresholds_cli import run_thresholds_command

    require_database(settings.database_url)
    return run_thresholds_command(settings, args)


def _alert_latency(args: argparse.Namespace, settings: Settings) -> int:
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


Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carewatch", description=__doc__, formatter_class=HelpFormatter,
                                     epilog=_epilog([v.name for v in settings_module.variables()
                                                     if v.name not in LOGS]))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func: Handler, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter,
                           epilog=_epilog(READS[name]))
        p.set_defaults(func=func)
        return p

    command("migrate", "create the database if needed and apply the migrations (safe to run again)", _migrate)

    p = command("broker", "run a local tansu Kafka-compatible broker (memory storage)", _broker)
    p.add_argument("--port", type=int, default=9092, help="port to listen on, on 127.0.0.1")

    command("worker", "run the stream worker (faust) on the care-events topic", _worker)

    p = command("api", "serve GraphQL, POST /events, /healthz, /readyz and /metrics", _api)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on")
    p.add_argument("--reuse-port", action="store_true",
                   help="share the port with other API processes started the same way (SO_REUSEPORT: the "
                        "kernel spreads connections over them); see docs/scaling.md")

    p = command("api-load", "load the API with issue 13's portal queries (wrk) and report req/s, latency and CPU",
                _api_load)
    from carewatch.load.run import add_arguments

    add_arguments(p)

    command("scheduler", "run the deadline sweeps and periodic jobs", _scheduler)

    p = command("simulate", "feed a seeded synthetic care day to Kafka or POST /events", _simulate)
    _add_simulation_options(p)
    p.add_argument("--target", choices=["kafka", "http"], default="kafka",
                   help="kafka: produce to CAREWATCH_KAFKA_URL; http: POST /events to --api-url")
    p.add_argument("--api-url", default="http://127.0.0.1:8000", help="API base URL for --target http")
    p.add_argument("--token", default=None, help="bearer token for --target http (an ingest or admin token)")

    p = command("demo", "run broker, worker, API, scheduler and the simulator together", _demo,
                "Everything on this machine: a simulated week backfilled at full speed, then a live care day "
                "at --speed, with ready tokens for each role. Refuses to start when its port or database is "
                "in use.")
    _add_simulation_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address the API listens on")
    p.add_argument("--port", type=int, default=8000, help="port the API listens on")
    p.add_argument("--embedded", action="store_true",
                   help="use an embedded PostgreSQL and Redis (from PyPI wheels) even when the machine has "
                        "its own; without this they are used only where none answers")
    p.add_argument("--backfill-days", type=float, default=7.0,
                   help="simulated days before --start sent at full speed before going live, so that rolling "
                        "7-day figures are whole from the first minute (0: none)")
    p.add_argument("--duration", type=float, default=0.0,
                   help="stop after this many real seconds (0: run until Ctrl-C)")

    p = command("bench", "throughput benchmark of the real worker against the bare consumer ceiling", _bench)
    p.add_argument("--events", type=int, default=60000, help="events per run")
    p.add_argument("--runs", type=int, default=3, help="runs; the table gives each and the median")
    p.add_argument("--workers", type=int, default=1, help="worker processes in the one consumer group")

    p = command("statement-bench", "time statements over a commissioner's 10,000 packages and a year of shifts, "
                                   "built by COPY in a scratch database (also ops/statement-bench)", _statement_bench)
    p.add_argument("--packages", type=int, default=10_000, help="care packages of the one commissioner")
    p.add_argument("--providers", type=int, default=40, help="providers delivering them")
    p.add_argument("--visits-per-day", type=int, default=1, help="shifts per package per day, over 365 days")
    p.add_argument("--repeats", type=int, default=5, help="runs of each query; the median is shown")
    p.add_argument("--seed", type=int, default=7, help="random seed of the delivery figures")
    p.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    p.add_argument("--reuse", default=None, metavar="DATABASE",
                   help="measure again on a database an earlier --keep run built (nothing is built or dropped)")

    p = command("faults", "the fault suite: one feed run cleanly and under faults, on services of its own; "
                          "every figure and alert must be equal (also ops/faults)", _faults)
    p.add_argument("--short", action="store_true", help="a smaller feed and four faults (as in the tests)")
    p.add_argument("--seed", type=int, default=11, help="seed of the simulated feed")
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

    p = command("token", "create, list or revoke API tokens (the secret is shown once)", _token)
    token_sub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = token_sub.add_parser("create", help="create a token; prints the secret alone on standard output",
                             formatter_class=HelpFormatter, epilog=_epilog(READS["token"]))
    t.add_argument("--role", required=True, help="admin, commissioner, safeguarding, provider or ingest")
    t.add_argument("--scope", default=None,
                   help="commissioner id (commissioner, safeguarding) or provider id (provider, ingest); "
                        "admin takes none")
    t.add_argument("--name", default="", help="who or what the token is for")
    t.add_argument("--force", action="store_true",
                   help="create it even when the scope id is not in the database yet (its events have not "
                        "arrived)")
    token_sub.add_parser("list", help="list tokens with a header (never their secrets)",
                         formatter_class=HelpFormatter, epilog=_epilog(READS["token"]))
    t = token_sub.add_parser("revoke", help="revoke a token by id", formatter_class=HelpFormatter,
                             epilog=_epilog(READS["token"]))
    t.add_argument("id", type=int, help="the token's id, as `carewatch token list` shows it")

    p = command("thresholds", "set or show a commissioner's alert threshold overrides", _thresholds)
    th_sub = p.add_subparsers(dest="thresholds_command", required=True, metavar="ACTION")
    t = th_sub.add_parser("set", help="merge name=value overrides, e.g. late_start_minutes=20",
                          formatter_class=HelpFormatter, epilog=_epilog(READS["thresholds"]))
    t.add_argument("--commissioner", required=True, help="commissioner id")
    t.add_argument("assignments", nargs="*", metavar="NAME=VALUE", help="overrides to set, e.g. late_start_minutes=20")
    t.add_argument("--clear", action="append", metavar="NAME", help="drop an override (back to the default)")
    t = th_sub.add_parser("show", help="print the commissioner's overrides as JSON", formatter_class=HelpFormatter,
                          epilog=_epilog(READS["thresholds"]))
    t.add_argument("--commissioner", required=True, help="commissioner id")

    p = command("alert-latency", "measure clock-out -> alert and deadline -> absence alert delivery under load",
                _alert_latency)
    p.add_argument("--visits", type=int, default=200, help="clock-outs that each raise a SHORT_VISIT alert")
    p.add_argument("--absences", type=int, default=100, help="shifts left without a clock-in (LATE_START)")
    p.add_argument("--background-rate", type=float, default=1000.0, help="background events per second")
    p.add_argument("--runs", type=int, default=3, help="repeat runs; the table gives each and the median")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_module.load()
        setup_logging(settings, command=args.command)
        return int(args.func(args, settings) or 0)
    except ServiceUnavailable as exc:
        print(f"carewatch {args.command}: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
