"""Load generators: wrk (Debian's `wrk`) when installed, else a small asyncio/httpx one.

Both report the same `LoadResult`. wrk is the measurement to quote: it is written in C and costs
the machine little; the fallback shares the API's cores and Python's overheads, so it understates.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# Counts a response as an error when it is not 200 or carries GraphQL errors; prints one JSON line at the end.
_LUA = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(authorization)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + t:get("bad") end
  local e = summary.errors
  io.write(string.format('WRKRESULT {"requests": %%d, "duration_us": %%d, "p50": %%d, "p90": %%d, "p99": %%d,'
    .. ' "socket_errors": %%d, "bad": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), e.connect + e.read + e.write + e.timeout, bad_total))
end
"""


@dataclass(frozen=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def run_wrk(url: str, token: str, body: dict[str, Any], *, threads: int, connections: int,
            seconds: float) -> LoadResult:
    script = _LUA % {"body": _lua_string(json.dumps(body)), "authorization": _lua_string(f"Bearer {token}")}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              "--timeout", "10s", "-s", f.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        Path(f.name).unlink(missing_ok=True)
    line = next((x for x in out.splitlines() if x.startswith("WRKRESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(line.removeprefix("WRKRESULT "))
    return LoadResult("wrk", r["requests"], r["duration_us"] / 1e6, r["p50"] / 1000, r["p90"] / 1000,
                      r["p99"] / 1000, r["socket_errors"] + r["bad"])


def _percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, int(q / 100 * len(sorted_ms)))]


async def _python_load(url: str, token: str, body: dict[str, Any], connections: int,
                       seconds: float) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(limits=limits, timeout=10.0, headers=headers) as client:
        deadline = time.perf_counter() + seconds

        async def user() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = await client.post(url, json=body)
                    bad = response.status_code != 200 or b'"errors"' in response.content
                except httpx.HTTPError:
                    bad = True
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += bad

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult("python", len(latencies), elapsed, statistics.median(latencies) if latencies else 0.0,
                      _percentile(latencies, 90), _percentile(latencies, 99), errors)


def run_python(url: str, token: str, body: dict[str, Any], *, connections: int, seconds: float) -> LoadResult:
    return asyncio.run(_python_load(url, token, body, connections, seconds))


def refusal_times(url: str, token: str, queries: list[str]) -> list[float]:
    """Milliseconds each request over the cost limit took to be refused (400), one after another, in order."""
    times = []
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {token}"}) as client:
        client.get(url.rsplit("/", 1)[0] + "/healthz")  # the connection is open before the first is timed
        for query in queries:
            t0 = time.perf_counter()
            response = client.post(url, json={"query": query})
            times.append((time.perf_counter() - t0) * 1000)
            if response.status_code != 400 or "QUERY_COST_OVER_LIMIT" not in response.text:
                raise RuntimeError(f"expected a cost refusal, got {response.status_code}: {response.text[:200]}")
    return times
