"""Two `carewatch scheduler` processes: SIGKILL the active one; the standby takes over the lease and
raises the next deadline's alert; no alert is raised, recorded or published twice, none is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from tests.integration.alert_fixtures import START, add_package, add_shift

from carewatch.clock import AcceleratedClock
from procs import ROOT, _stop

pytestmark = pytest.mark.services

SPEED = 120.0  # simulated seconds per real second


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _late_starts(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), str(r[1])) for r in conn.execute(
            "SELECT kind, subject_id FROM alerts ORDER BY id").fetchall()]


def test_the_standby_scheduler_takes_over_when_the_active_one_is_killed(
        fresh_database_url: str, redis_url: str, tmp_path: Path) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db)
        add_shift(db, "SH-A", starts_at=START)  # late at START+15 min: before the kill
        add_shift(db, "SH-B", starts_at=START + timedelta(minutes=20))  # late at START+35 min: after it
    prefix = f"carewatch-test-{uuid.uuid4().hex[:8]}"
    clock = AcceleratedClock(START + timedelta(minutes=14, seconds=30), datetime.now(UTC), SPEED)
    env = {**os.environ, "CAREWATCH_DATABASE_URL": url, "CAREWATCH_REDIS_URL": redis_url,
           "CAREWATCH_REDIS_PREFIX": prefix, "CAREWATCH_CLOCK": clock.spec()}
    client = redis.Redis.from_url(redis_url)
    listener = client.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(f"{prefix}:alerts")
    processes: list[subprocess.Popen[bytes]] = []

    def start(n: int) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"scheduler-{n}.log", "wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen([sys.executable, "-m", "carewatch", "scheduler"], env=env, cwd=ROOT,
                                       stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    try:
        active = start(1)
        _until(lambda: client.get(f"{prefix}:scheduler-lease") is not None, 30, "the first scheduler's lease")
        standby = start(2)
        _until(lambda: _late_starts(url) == [("LATE_START", "SH-A")], 30, "SH-A's late start")
        time.sleep(1.0)  # the standby is up and has seen the lease held
        assert standby.poll() is None

        active.send_signal(signal.SIGKILL)  # no goodbye: its lease must run out (3 s)
        active.wait()
        _until(lambda: len(_late_starts(url)) == 2, 40, "SH-B's late start from the standby")
        time.sleep(2.0)  # several more sweeps by the new active one: still nothing twice

        assert _late_starts(url) == [("LATE_START", "SH-A"), ("LATE_START", "SH-B")]
        with psycopg.connect(url) as conn:
            history = conn.execute("SELECT a.subject_id, h.status FROM alert_history h"
                                   " JOIN alerts a ON a.id = h.alert_id ORDER BY h.id").fetchall()
        assert history == [("SH-A", "open"), ("SH-B", "open")]
        published: list[dict[str, Any]] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=0.1)
            if message is not None:
                published.append(json.loads(message["data"]))
        assert [(m["kind"], m["subject_id"]) for m in published] == [("LATE_START", "SH-A"),
                                                                      ("LATE_START", "SH-B")]
        assert b"taken: this scheduler is active" in (tmp_path / "scheduler-2.log").read_bytes()
    finally:
        for process in processes:
            if process.poll() is None:
                _stop(process)
        listener.close()
        client.close()
