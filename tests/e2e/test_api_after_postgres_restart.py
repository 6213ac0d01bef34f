"""The API on a PostgreSQL cluster of the test's own: after the server restarts, the next request is
answered (its pool tries a connection before lending it), not a 500 from a connection the server closed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from carewatch.faults.services import Services
from carewatch.schema.migrate import ensure_database, migrate
from carewatch.services import free_port, wait_for_port

pytestmark = pytest.mark.services

QUERY = "{ packages(first: 5) { edges { node { id } } } }"


def test_the_first_request_after_a_postgres_restart_is_answered(tmp_path: Path, redis_url: str) -> None:
    services = Services(tmp_path)
    try:
        postgres = services.start_postgres()
        url = postgres.url("carewatch")
        ensure_database(url)
        migrate(url)
        env = {**os.environ, "CAREWATCH_DATABASE_URL": url, "CAREWATCH_REDIS_URL": redis_url,
               "CAREWATCH_KAFKA_URL": "kafka://127.0.0.1:1", "CAREWATCH_TOKEN_CACHE_SECONDS": "0"}
        token = subprocess.run([sys.executable, "-m", "carewatch", "token", "create", "--role", "admin"], env=env,
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        port = free_port()
        api = services.carewatch("api", ["api", "--port", str(port)], env)
        wait_for_port(port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}

        def ask() -> httpx.Response:
            return httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, headers=headers,
                              timeout=30)

        for _ in range(3):  # every pooled connection has been used once
            assert ask().status_code == 200
        postgres.stop("fast")
        time.sleep(1)
        postgres.start()
        answers = [ask().status_code for _ in range(3)]
        assert answers == [200, 200, 200], api.tail()
    finally:
        services.close()
