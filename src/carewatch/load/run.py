"""`carewatch api-load`: build the data set, start the API, load it with the portal queries, report.

For each query: req/s, p50/p90/p99, errors, and the CPU the API processes and the PostgreSQL backends
of the data set's database spent per request (from /proc, so this runs on the database's machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from carewatch.load.dataset import DataSet, build, feed_options
from carewatch.load.generator import LoadResult, have_wrk, refusal_times, run_python, run_wrk
from carewatch.load.profile import summarise
from carewatch.load.queries import PortalQuery, aliased_packages, portal_queries
from carewatch.load.subscribers import run_cycles
from carewatch.schema.migrate import database_name, with_database
from carewatch.settings import Settings

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (those that have gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / TICKS


def backend_pids(database_url: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (database_name(database_url),)).fetchall()
    return [r[0] for r in rows]


@dataclass
class Api:
    processes: list[subprocess.Popen[bytes]]
    url: str
    redis_prefix: str

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]


@contextmanager
def api_processes(data: DataSet, settings: Settings, port: int, count: int, log: Path,
                  source: str | None = None) -> Iterator[Api]:
    prefix = f"carewatch:api-load-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "CAREWATCH_DATABASE_URL": data.database_url, "CAREWATCH_REDIS_URL": settings.redis_url,
           "CAREWATCH_CLOCK": f"fixed:{data.now.isoformat()}", "CAREWATCH_ENV": "production",
           "CAREWATCH_REDIS_PREFIX": prefix,
           "CAREWATCH_KAFKA_URL": settings.kafka_url}
    if source:  # another checkout's code serves, for a before/after comparison on the same data
        env["PYTHONPATH"] = str(Path(source).resolve())
    command = [sys.executable, "-m", "carewatch", "api", "--port", str(port)]
    if count > 1:
        command.append("--reuse-port")
    processes: list[subprocess.Popen[bytes]] = []
    with open(log, "ab") as out:
        for _ in range(count):
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
    api = Api(processes, f"http://127.0.0.1:{port}", prefix)
    try:
        _wait_ready(api, count, log)
        yield api
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _wait_ready(api: Api, count: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in api.processes):
            raise SystemExit(f"api-load: an API process exited; see {log}")
        try:
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                time.sleep(1.0 if count > 1 else 0.2)  # let every process of a shared port start listening
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"api-load: the API did not become ready in 60 s; see {log}")


@dataclass(frozen=True)
class Measured:
    query: PortalQuery
    load: LoadResult
    api_cpu_ms: float  # per request
    pg_cpu_ms: float
    api_cpu_share: float  # of one core, summed over processes


def measure(api: Api, data: DataSet, q: PortalQuery, args: argparse.Namespace) -> Measured:
    url = f"{api.url}/graphql"
    token = data.tokens[q.role]

    def load(seconds: float) -> LoadResult:
        if args.generator == "wrk":
            return run_wrk(url, token, q.body(), threads=args.threads, connections=args.connections,
                           seconds=seconds)
        return run_python(url, token, q.body(), connections=args.connections, seconds=seconds)

    if args.warmup > 0:
        load(args.warmup)
    backends = backend_pids(data.database_url)
    api0, pg0 = cpu_seconds(api.pids), cpu_seconds(backends)
    result = load(args.duration)
    api1, pg1 = cpu_seconds(api.pids), cpu_seconds(backends)
    n = result.requests or float("nan")  # none completed: no figure per request
    return Measured(q, result, (api1 - api0) * 1000 / n, (pg1 - pg0) * 1000 / n,
                    (api1 - api0) / result.seconds if result.seconds else 0.0)


def alone(api: Api, data: DataSet, q: PortalQuery, n: int) -> tuple[float, float]:
    """(API CPU ms per request, median wall ms) for `n` requests one after another."""
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {data.tokens[q.role]}"}) as client:
        client.post(f"{api.url}/graphql", json=q.body())
        walls = []
        before = cpu_seconds(api.pids)
        for _ in range(n):
            t0 = time.perf_counter()
            response = client.post(f"{api.url}/graphql", json=q.body())
            walls.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 200 or "errors" in response.json():
                raise SystemExit(f"api-load: {q.name} failed: {response.text[:300]}")
        spent = cpu_seconds(api.pids) - before
    return spent * 1000 / n, statistics.median(walls)


def profile(api: Api, data: DataSet, q: PortalQuery, args: argparse.Namespace, out: Path) -> None:
    """py-spy samples the (first) API process while the query runs under load; raw collapsed stacks to `out`."""
    beside = Path(sys.executable).parent / "py-spy"
    spy_bin = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if spy_bin is None:
        raise SystemExit("api-load: --profile needs py-spy (`.venv/bin/pip install py-spy`)")
    spy = subprocess.Popen([spy_bin, "record", "--pid", str(api.pids[0]), "--duration", str(round(args.duration)),
                            "--format", "raw", "--rate", "200", "--nonblocking", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    measure(api, data, q, argparse.Namespace(**{**vars(args), "warmup": 0}))
    spy.wait(timeout=args.duration + 60)
    print(f"api-load: py-spy profile of {q.name} written to {out} (collapsed stacks)\n", flush=True)
    print(summarise(out), flush=True)


def run_api_load(args: argparse.Namespace, settings: Settings) -> int:
    given = args.generator is not None
    args.generator = args.generator or "wrk"
    if args.generator == "wrk" and not have_wrk():
        if given:
            raise SystemExit("api-load: wrk is not installed (Debian: apt-get install wrk); "
                             "or pass --generator python for the slower built-in generator")
        print("api-load: wrk is not installed (Debian: apt-get install wrk); using the built-in Python "
              "generator, which shares the API's cores and understates what the API can do", flush=True)
        args.generator = "python"
    database_url = args.database_url or with_database(settings.database_url, "carewatch_apiload")
    data = build(database_url, feed_options(args.packages, args.providers, args.days, args.seed),
                 rebuild=args.rebuild)
    chosen = [q for q in portal_queries(data.package_id, data.now) if q.name in args.queries]
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    with api_processes(data, settings, args.port, args.api_processes, home / "api.log", args.api_source) as api:
        if args.subscribers:
            run_cycles(api.url, api.pids[0], data.tokens["admin"], api.redis_prefix, settings.redis_url,
                       [int(x) for x in args.subscribers.split(",")])
            return 0
        print(f"api-load: {args.api_processes} API process(es) on {api.url}; {args.generator}, "
              f"{args.connections} connections, {args.duration:g} s per query; clock {data.now.isoformat()}",
              flush=True)
        if args.profile:
            profile(api, data, next(q for q in chosen), args, Path(args.profile))
        for q in chosen:
            if args.alone:
                cpu, wall = alone(api, data, q, args.alone)
                print(f"alone   {q.name:9} API CPU {cpu:6.1f} ms/request, wall p50 {wall:6.1f} ms "
                      f"({args.alone} one after another)", flush=True)
        rows = []
        for run in range(args.runs):
            for q in chosen:
                m = measure(api, data, q, args)
                rows.append(m)
                r = m.load
                print(f"run {run + 1} {q.name:9} {r.rate:8.1f} req/s  p50 {r.p50_ms:7.1f} ms  p90 {r.p90_ms:7.1f} ms"
                      f"  p99 {r.p99_ms:7.1f} ms  errors {r.errors:5d}  API CPU {m.api_cpu_ms:6.1f} ms/req"
                      f" ({m.api_cpu_share:4.0%})  PostgreSQL CPU {m.pg_cpu_ms:5.1f} ms/req", flush=True)
        if "refusal" in args.queries or args.refusal:
            refusals(api, data)
    _summary(rows, args.runs)
    return 0


def refusals(api: Api, data: DataSet, n: int = 50) -> None:
    """The issue's 15-alias request refused by the cost limit: the same text `n` times (its reading cached after
    the first), then `n` texts the API has not seen (aliases named afresh: each read anew). Client wall time,
    and the API's CPU per refusal."""
    url, token = f"{api.url}/graphql", data.tokens["commissioner"]
    for label, queries in (("the same text", [aliased_packages()] * n),
                           ("new texts", [aliased_packages(prefix=f"r{uuid.uuid4().hex[:6]}_") for _ in range(n)])):
        before = cpu_seconds(api.pids)
        times = refusal_times(url, token, queries)
        cpu = (cpu_seconds(api.pids) - before) * 1000 / n
        print(f"refusal 15 aliased packages(first: 500), {label}: refused in p50 {statistics.median(times):.1f} ms,"
              f" max {max(times):.1f} ms (first {times[0]:.1f} ms; {n} one after another, wall time at the client);"
              f" API CPU {cpu:.2f} ms per refusal", flush=True)


def _summary(rows: list[Measured], runs: int) -> None:
    if not rows:
        return
    print(f"\nmedians of {runs} run(s):")
    print("| query | req/s | p50 | p90 | p99 | errors | API CPU/req | PostgreSQL CPU/req |")
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(m.query.name for m in rows):
        ms = [m for m in rows if m.query.name == name]
        rate = statistics.median(m.load.rate for m in ms)
        p50, p90, p99 = (statistics.median(getattr(m.load, f) for m in ms) for f in ("p50_ms", "p90_ms", "p99_ms"))
        api_cpu = statistics.median(m.api_cpu_ms for m in ms)
        pg_cpu = statistics.median(m.pg_cpu_ms for m in ms)
        print(f"| {ms[0].query.label} | {rate:.0f} | {p50:.0f} ms | {p90:.0f} ms | {p99:.0f} ms"
              f" | {sum(m.load.errors for m in ms)} | {api_cpu:.1f} ms | {pg_cpu:.1f} ms |")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", default=None,
                   help="database for the data set (default: database carewatch_apiload on CAREWATCH_DATABASE_URL's "
                        "server); made and filled on first use, kept for the next run")
    p.add_argument("--rebuild", action="store_true", help="drop and rebuild the data set")
    p.add_argument("--packages", type=int, default=2000, help="simulated packages")
    p.add_argument("--providers", type=int, default=8, help="simulated providers")
    p.add_argument("--days", type=float, default=3.0, help="simulated days")
    p.add_argument("--seed", type=int, default=7, help="seed of the simulated feed")
    p.add_argument("--queries", default="packages,shifts,package",
                   type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                   help="which of packages, shifts, package to run (comma-separated)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per query and run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each measured run")
    p.add_argument("--runs", type=int, default=1, help="runs under load (0: only --alone); a table of medians follows")
    p.add_argument("--connections", type=int, default=50, help="concurrent connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--generator", choices=["wrk", "python"], default=None,
                   help="wrk (default, Debian's wrk) or python (asyncio + httpx, when wrk is not installed)")
    p.add_argument("--api-processes", type=int, default=1, help="API processes sharing the port (SO_REUSEPORT)")
    p.add_argument("--port", type=int, default=8765, help="port of the API processes started for the test")
    p.add_argument("--alone", type=int, default=0,
                   help="first send this many requests of each query one after another: API CPU per request alone")
    p.add_argument("--refusal", action="store_true",
                   help="also time 50 refusals of the issue's 15-alias request by the query cost limit")
    p.add_argument("--profile", default=None,
                   help="record the first query under load with py-spy into this file (raw collapsed stacks)")
    p.add_argument("--subscribers", default=None,
                   help="instead of the queries: cycles of this many live alerts subscribers (e.g. 2000,10000,10000): "
                        "delivery p50/p99 of one alert and the API's memory before, subscribed and after they leave")
    p.add_argument("--api-source", default=None,
                   help="serve with the code in this folder (another checkout's src/), e.g. to measure before a change")
    p.add_argument("--home", default=".carewatch/load", help="folder for the API's log")
