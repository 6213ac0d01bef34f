"""Fixtures that start or reach the real services: PostgreSQL, Redis and a tansu broker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from carewatch.schema.migrate import ensure_database, migrate
from carewatch.services import Broker, check_postgres, check_redis, start_broker

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXAMPLES = ROOT / "tests" / "fixtures" / "contracts"

ADMIN_URL = os.environ.get("CAREWATCH_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CAREWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def _db_url(name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def make_database() -> str:
    """A new, migrated database with a unique name; dropped at the end of the session."""
    name = f"carewatch_test_{uuid.uuid4().hex[:10]}"
    url = _db_url(name)
    ensure_database(url)
    migrate(url)
    _CREATED.append(name)
    return url


_CREATED: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _CREATED:
        return
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            for name in _CREATED:
                conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)))
    except psycopg.Error:
        pass


@pytest.fixture(scope="session")
def database_url() -> str:
    """A migrated database shared by the session's tests (each test cleans what it needs)."""
    check_postgres(ADMIN_URL)
    return make_database()


@pytest.fixture()
def fresh_database_url() -> str:
    """A migrated database of the test's own."""
    check_postgres(ADMIN_URL)
    return make_database()


@pytest.fixture(scope="session")
def redis_url() -> str:
    check_redis(REDIS_URL)
    return REDIS_URL


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A tansu broker on a free loopback port for the whole session."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    b = start_broker(log_path=log)
    yield b
    b.stop()


def contract_lines(name: str) -> list[str]:
    """The lines of a contract example file: ../shared/contracts when present, else the copy in tests."""
    shared = SHARED / "contracts" / "examples" / name
    path = shared if shared.exists() else EXAMPLES / name
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
