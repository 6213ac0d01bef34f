"""TimescaleDB is used only where the server preloads it; installed but not preloaded, `migrate` keeps to
plain PostgreSQL and says exactly what to change (TimescaleDB cannot be installed here: a fake server)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from carewatch.schema import migrate as migrate_module
from carewatch.schema.migrate import (
    MigrationError,
    core_migrations,
    migrate,
    not_preloaded_fix,
    preloaded_libraries,
    timescale_state,
)
from support import ADMIN_URL, CREATED_DATABASES


class FakeServer:
    """Answers the two questions timescale_state asks, as a server with this set-up would."""

    def __init__(self, installed: bool, preload: str) -> None:
        self.installed, self.preload = installed, preload

    def execute(self, sql: str, *args: Any) -> FakeServer:
        self.row: tuple[Any, ...] | None
        if "pg_available_extensions" in sql:
            self.row = (1,) if self.installed else None
        elif "shared_preload_libraries" in sql:
            self.row = (self.preload,)
        else:
            raise AssertionError(f"unexpected query {sql}")
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


@pytest.mark.parametrize(("installed", "preload", "state"), [
    (False, "", "absent"),
    (False, "timescaledb", "absent"),
    (True, "", "not_preloaded"),
    (True, "pg_stat_statements", "not_preloaded"),
    (True, "pg_stat_statements,timescaledb", "preloaded"),
    (True, "'$libdir/timescaledb'", "preloaded"),
    (True, "timescaledb_toolkit", "not_preloaded"),
])
def test_timescale_counts_only_where_preloaded(installed: bool, preload: str, state: str) -> None:
    assert timescale_state(FakeServer(installed, preload)) == state


def test_the_fix_keeps_what_is_preloaded_now() -> None:
    assert preloaded_libraries(" pg_stat_statements, '$libdir/auto_explain' ") == ["pg_stat_statements",
                                                                                    "auto_explain"]
    fix = not_preloaded_fix(FakeServer(True, "pg_stat_statements"))
    assert "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements,timescaledb';" in fix
    assert "restart PostgreSQL, then run `carewatch migrate` again" in fix
    assert "(now 'empty')" in not_preloaded_fix(FakeServer(True, ""))


def _new_database() -> str:
    name = f"carewatch_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    CREATED_DATABASES.append(name)
    return psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)


@pytest.mark.services
def test_migrate_on_a_server_that_does_not_preload_it_uses_plain_tables_and_says_what_to_change(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = _new_database()
    monkeypatch.setattr(migrate_module, "timescale_state", lambda conn: "not_preloaded")
    applied = migrate(url, log=True)
    assert applied == [m.version for m in core_migrations()]  # no timescale/ migration attempted
    err = capsys.readouterr().err
    assert err.startswith("migrate: note: using plain PostgreSQL tables. TimescaleDB is installed on this "
                          "server but not in shared_preload_libraries")
    assert "ALTER SYSTEM SET shared_preload_libraries = " in err


@pytest.mark.services
def test_a_database_already_on_timescale_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    url = _new_database()
    migrate(url)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES ('timescale/001_hypertables.sql')")
    monkeypatch.setattr(migrate_module, "timescale_state", lambda conn: "not_preloaded")
    with pytest.raises(MigrationError, match="this database uses TimescaleDB, which the server no longer loads"):
        migrate(url)


@pytest.mark.services
def test_a_fatal_error_during_a_migration_surfaces_as_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not "the connection is closed" from the unlock after it: the real reason (here a terminated session,
    as CREATE EXTENSION timescaledb without preloading gives)."""
    url = _new_database()
    boom = migrate_module.Migration("999_fatal.sql", "SELECT pg_terminate_backend(pg_backend_pid());")
    monkeypatch.setattr(migrate_module, "core_migrations", lambda: [boom])
    with pytest.raises(psycopg.OperationalError) as raised:
        migrate(url)
    assert "the connection is closed" not in str(raised.value)
