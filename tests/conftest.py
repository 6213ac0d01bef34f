"""Fixtures that start or reach the real services: PostgreSQL, Redis and a tansu broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from carewatch.services import Broker, check_postgres, check_redis, start_broker
from support import ADMIN_URL, REDIS_URL, drop_created_databases, make_database

# Fixtures that reach a real service: a test using any of them must carry the `services` marker,
# so that `-m "not services"` runs exactly the tests that need nothing but Python.
SERVICE_FIXTURES = frozenset({"database_url", "fresh_database_url", "redis_url", "broker"})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_created_databases()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [item.nodeid for item in items
                if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("services") is None]
    if unmarked:
        raise pytest.UsageError("these tests use a service fixture but are not marked `services`:\n  "
                                + "\n  ".join(unmarked))


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
