"""`carewatch demo` end to end: on real PostgreSQL and Redis, with its own broker, it serves GraphQL and
fills the ledger from the simulated feed, then stops cleanly after --duration."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from carewatch.services import free_port

MISSING = [m for m in ("carewatch.web", "carewatch.stream.worker") if importlib.util.find_spec(m) is None]

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(bool(MISSING), reason=f"the demo needs the worker and the API; missing: {MISSING}"),
]


def test_demo_serves_graphql_and_fills_the_ledger(fresh_database_url: str, redis_url: str,
                                                  tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CAREWATCH_DATABASE_URL": fresh_database_url, "CAREWATCH_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "carewatch", "demo", "--duration", "40", "--speed", "600", "--packages", "6",
         "--port", str(port)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"http://127.0.0.1:{port}/graphql" in done.stdout, output
    assert "stopped the services and the broker" in done.stdout
    assert (tmp_path / ".carewatch" / "worker.log").exists()
    with psycopg.connect(fresh_database_url) as conn:
        ledger_rows = conn.execute("SELECT count(*) FROM shift_ledger").fetchone()
        packages = conn.execute("SELECT count(*) FROM packages").fetchone()
        # Every provider's second carer drives a rural round: unpaid travel takes their pay for some
        # week below the minimum, named with its ISO week.
        weeks = conn.execute("SELECT details->>'week' FROM alerts WHERE kind = 'PAY_BELOW_MINIMUM'"
                             " AND details ? 'week'").fetchall()
    assert packages is not None and packages[0] == 6
    assert weeks and all(w.startswith("20") and "-W" in w for (w,) in weeks), output
    assert ledger_rows is not None and ledger_rows[0] > 0, output


def test_demo_runs_on_embedded_postgres_and_redis(tmp_path: Path) -> None:
    """`--embedded` (what the demo falls back to on a machine with neither running): the demo starts
    PostgreSQL and Redis from their PyPI wheels, the ledger fills, and both are stopped at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "carewatch", "demo", "--embedded", "--duration", "35", "--speed", "600",
         "--packages", "6", "--port", str(port)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "starting an embedded PostgreSQL as asked" in done.stdout, output
    assert "started an embedded Redis at redis://127.0.0.1:" in done.stdout, output
    # The live figures read back through GraphQL show care delivered.
    delivered = [line for line in done.stdout.splitlines() if "carer-minutes delivered" in line]
    assert delivered and delivered[-1].split("6 packages, ")[1].split(" carer-minutes")[0] != "0", output
    assert (tmp_path / ".carewatch" / "postgres" / "PG_VERSION").exists()
    running = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert running.stdout.strip() == "", f"embedded servers left running: {running.stdout}"


def test_demo_does_not_replace_a_database_it_was_given(tmp_path: Path) -> None:
    env = {**os.environ, "CAREWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/somewhere"}
    done = subprocess.run([sys.executable, "-m", "carewatch", "demo", "--duration", "1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "PostgreSQL did not answer" in done.stderr and "embedded" not in done.stdout


def test_where_no_service_answers_the_demo_falls_back_to_embedded_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The automatic path: the default PostgreSQL and Redis addresses do not answer and no URL was set."""
    import argparse

    from carewatch import demo
    from carewatch.embedded import EmbeddedServices

    monkeypatch.setattr(demo, "DEMO_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/carewatch_demo")
    monkeypatch.setattr(demo, "DEFAULT_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # set by the demo otherwise; not left behind
    embedded = EmbeddedServices()
    try:
        database_url, own, redis_url = demo._services(argparse.Namespace(embedded=False), {}, tmp_path, embedded)
        assert own and "carewatch_demo" in database_url and "127.0.0.1:1" not in database_url
        assert redis_url.startswith("redis://127.0.0.1:") and redis_url != "redis://127.0.0.1:1/0"
        with psycopg.connect(psycopg.conninfo.make_conninfo(database_url, dbname="postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        import redis

        assert redis.Redis.from_url(redis_url).ping()
    finally:
        embedded.stop()
    assert embedded.redis is None and embedded.postgres is None
