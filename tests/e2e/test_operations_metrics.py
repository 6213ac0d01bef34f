"""The operators' view of real processes: the worker, the scheduler and the API as subprocesses, each
scraped on /metrics after some traffic. Every metric the Grafana dashboard queries must be there with
samples, each process must serve its own, the API answers /readyz, and the logs are what production
wants: no escape codes off a terminal, JSON lines when asked, no routine per-second job lines."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from carewatch.services import Broker, free_port, wait_for_port
from procs import ROOT, _stop, api_server, produce, scalar, wait_for, worker
from support import contract_lines

pytestmark = pytest.mark.services

DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "carewatch.json"
METRIC = re.compile(r"\bcarewatch_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def dashboard_metrics() -> set[str]:
    """Every metric name the dashboard's queries use."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return {m for e in exprs for m in METRIC.findall(e)}


def scrape(url: str) -> dict[str, set[str]]:
    """{'declared': names a query may use, 'sampled': names with at least one sample}."""
    text = httpx.get(url, timeout=10).text
    declared: set[str] = set()
    sampled: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
        sampled.update(sample.name for sample in family.samples)
    return {"declared": declared, "sampled": sampled}


def scrape_when_ready(url: str, *want: str, timeout: float = 30.0) -> dict[str, set[str]]:
    """Scrape until every wanted name has a sample (a labelled counter has none before its first use)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = scrape(url)
            if set(want) <= found["sampled"]:
                return found
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never served {want}"
        time.sleep(0.3)


def test_the_dashboard_queries_only_metrics_the_processes_serve(
        broker: Broker, fresh_database_url: str, redis_url: str, tmp_path: Path) -> None:
    url, topic = fresh_database_url, f"care-events-{uuid.uuid4().hex[:8]}"
    worker_port, scheduler_port = free_port(), free_port()
    prefix = f"carewatch-test-{uuid.uuid4().hex[:8]}"
    common = {"CAREWATCH_REDIS_URL": redis_url, "CAREWATCH_REDIS_PREFIX": prefix}
    scheduler_log = tmp_path / "scheduler.log"
    scheduler_env = {**os.environ, **common, "CAREWATCH_DATABASE_URL": url, "CAREWATCH_LOG_FORMAT": "json",
                     "CAREWATCH_SCHEDULER_METRICS_PORT": str(scheduler_port)}
    with open(scheduler_log, "wb") as log:
        scheduler = subprocess.Popen([sys.executable, "-m", "carewatch", "scheduler"], env=scheduler_env,
                                     cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        with worker(broker, url, topic, CAREWATCH_WORKER_METRICS_PORT=str(worker_port), **common) as proc, \
                api_server(broker, url, redis_url, topic, **common) as base:
            asyncio.run(produce(broker, topic, [*contract_lines("valid.jsonl"), *contract_lines("invalid.jsonl")]))
            wait_for(url, lambda c: scalar(c, "SELECT count(*) FROM rejected_events") >= 1, proc)
            assert httpx.post(f"{base}/graphql", json={"query": "{ packages { edges { node { id } } } }"}
                              ).status_code == 401  # a refusal, for the refused-requests series
            ready = httpx.get(f"{base}/readyz", timeout=10)
            assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "redis": "ok"}

            # The invalid lines may be rejected in a batch before any valid one is applied (partitions).
            worker_metrics = scrape_when_ready(f"http://127.0.0.1:{worker_port}/metrics",
                                               "carewatch_consumer_lag", "carewatch_events_accepted_total")
            wait_for_port(scheduler_port, timeout=20)
            scheduler_metrics = scrape_when_ready(f"http://127.0.0.1:{scheduler_port}/metrics",
                                                  "carewatch_sweep_runs_total")
            api_metrics = scrape(f"{base}/metrics")
            worker_output = b""
        worker_output = proc.output  # what the worker printed, kept when it was stopped
    finally:
        _stop(scheduler)

    wanted = dashboard_metrics()
    assert len(wanted) >= 12, wanted
    served = worker_metrics["sampled"] | scheduler_metrics["sampled"] | api_metrics["sampled"]
    assert wanted <= served, f"the dashboard queries metrics no process serves: {sorted(wanted - served)}"
    # Each process serves its own part (all import one metrics module, so look at samples).
    assert {"carewatch_consumer_lag", "carewatch_batch_seconds_bucket", "carewatch_events_accepted_total",
            "carewatch_events_rejected_total"} <= worker_metrics["sampled"]
    assert {"carewatch_sweep_runs_total", "carewatch_sweep_failures_total", "carewatch_sweep_seconds_bucket",
            "carewatch_alerts_raised_total"} <= scheduler_metrics["sampled"]
    assert {"carewatch_api_requests_total", "carewatch_api_request_seconds_bucket", "carewatch_subscribers",
            "carewatch_api_refused_total"} <= api_metrics["sampled"]

    # Logs: no terminal escape codes in the worker's piped output; the scheduler's are JSON lines only,
    # with no routine per-second job lines.
    assert b"\x1b" not in worker_output, worker_output[-2000:]
    lines = [line for line in scheduler_log.read_text().splitlines() if line.strip()]
    entries: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert not [e for e in entries if e["logger"].startswith("apscheduler") and e["level"] == "INFO"], entries
    assert any("scheduler started" in e["message"] for e in entries), entries
