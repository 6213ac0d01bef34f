"""Redis going away and coming back, on a redis-server of the test's own: the scheduler process and the
API's alert hub each say so once when it stops answering and once when it answers again, with no
traceback, instead of a double traceback every second."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from carewatch.alerts.bus import Channels
from carewatch.graphql.alerts_hub import AlertHub
from carewatch.services import free_port, wait_for_port
from procs import ROOT, _stop

pytestmark = pytest.mark.services


class OwnRedis:
    """A redis-server on a free port that the test may stop and start again on that port."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.tmp = free_port(), tmp
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _until(check: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_the_scheduler_logs_a_redis_outage_once_at_each_end(
        own_redis: OwnRedis, database_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "scheduler.log"
    env = {**os.environ, "CAREWATCH_DATABASE_URL": database_url, "CAREWATCH_REDIS_URL": own_redis.url,
           "CAREWATCH_REDIS_PREFIX": f"carewatch-test-{uuid.uuid4().hex[:8]}"}
    with open(log_path, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "carewatch", "scheduler"], env=env, cwd=ROOT,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        _until(lambda: "this scheduler is active" in log_path.read_text(), 30, "the lease")
        own_redis.stop()
        time.sleep(4)  # four lease ticks, four sweeps with no lease
        own_redis.start()
        _until(lambda: "available again" in log_path.read_text(), 20, "the recovery line")
        time.sleep(1.5)
    finally:
        _stop(process)
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert text.count("unavailable") == 1, text
    assert text.count("available again") == 1, text
    assert "Running job" not in text  # apscheduler's per-second lines are DEBUG only


async def test_the_alert_hub_logs_a_redis_outage_once_at_each_end(
        own_redis: OwnRedis, caplog: pytest.LogCaptureFixture) -> None:
    hub = AlertHub(own_redis.url, Channels(f"carewatch-test-{uuid.uuid4().hex[:8]}"))
    with caplog.at_level(logging.DEBUG, logger="carewatch.graphql.alerts_hub"):
        await hub.start()
        await asyncio.sleep(0.5)
        own_redis.stop()
        await asyncio.sleep(3.5)  # three or four resubscription attempts
        own_redis.start()
        deadline = time.monotonic() + 15
        while not any("available again" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
            await asyncio.sleep(0.1)
        await hub.stop()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    where = f"Redis at 127.0.0.1:{own_redis.port} (live alerts and shift updates)"
    assert len(said) == 2, said
    assert said[0].startswith(f"{where} unavailable (ConnectionError: ") and "resubscribing" in said[0]
    assert said[1].startswith(f"{where} available again after ")
    assert all(r.exc_info is None for r in caplog.records)


def test_the_scheduler_logs_a_postgres_outage_once_at_each_end(redis_url: str, tmp_path: Path) -> None:
    """On a PostgreSQL of the test's own (the embedded one the demo falls back to), stopped for a few
    seconds under a running scheduler: one line when it goes, one when it is back, sweeping again."""
    from carewatch.embedded import EmbeddedServices, start_postgres
    from carewatch.schema.migrate import ensure_database, migrate

    home = tmp_path / "home"
    first = EmbeddedServices()
    url = start_postgres(home, first, "carewatch_outage")
    second = EmbeddedServices()
    process: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "scheduler.log"
    try:
        ensure_database(url)
        migrate(url)
        env = {**os.environ, "CAREWATCH_DATABASE_URL": url, "CAREWATCH_REDIS_URL": redis_url,
               "CAREWATCH_REDIS_PREFIX": f"carewatch-test-{uuid.uuid4().hex[:8]}"}
        with open(log_path, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "carewatch", "scheduler"], env=env, cwd=ROOT,
                                       stdout=out, stderr=subprocess.STDOUT)
        _until(lambda: "this scheduler is active" in log_path.read_text(), 30, "the lease")
        time.sleep(1.5)
        first.stop()
        _until(lambda: "PostgreSQL (sweeps) unavailable" in log_path.read_text(), 15, "the outage line")
        time.sleep(4)  # four ticks of the absence sweep against no database
        assert start_postgres(home, second, "carewatch_outage") == url
        _until(lambda: "PostgreSQL (sweeps) available again" in log_path.read_text(), 30, "the recovery line")
    finally:
        if process is not None:
            _stop(process)
        first.stop()
        second.stop()
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert text.count("unavailable") == 1 and text.count("available again") == 1, text
    assert "skipped: maximum number of running instances" not in text, text
