"""Apply the SQL migrations in order, once each; safe to run again and from several processes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import psycopg

# Any constant works: it only has to be the same for every Carewatch process.
_MIGRATION_LOCK = 7_240_311


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def _load(folder: str) -> list[Migration]:
    root = resources.files("carewatch.schema").joinpath("migrations")
    if folder:
        root = root.joinpath(folder)
    found = [
        Migration(f"{folder + '/' if folder else ''}{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in root.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda m: m.version)


def core_migrations() -> list[Migration]:
    return _load("")


def timescale_migrations() -> list[Migration]:
    return _load("timescale")


class MigrationError(RuntimeError):
    """The database cannot be migrated as it stands; the message says what to change."""


TimescaleState = Literal["absent", "preloaded", "not_preloaded"]


def preloaded_libraries(setting: str) -> list[str]:
    """The library names in a shared_preload_libraries value (`'$libdir/timescaledb', pg_stat_statements`)."""
    names = (part.strip().strip("'\"").rsplit("/", 1)[-1] for part in setting.split(","))
    return [name for name in names if name]


def timescale_state(conn: Any) -> TimescaleState:
    """Whether TimescaleDB can be used: installed *and* preloaded. Installed alone is not enough:
    CREATE EXTENSION then ends the session ("the connection is closed")."""
    if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is None:
        return "absent"
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return "preloaded" if "timescaledb" in preloaded_libraries(str(row[0] if row else "")) else "not_preloaded"


def not_preloaded_fix(conn: Any) -> str:
    """Exactly what to change so that TimescaleDB loads, keeping the libraries preloaded now."""
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    now = preloaded_libraries(str(row[0] if row else ""))
    wanted = ",".join([*now, "timescaledb"])
    return (f"TimescaleDB is installed on this server but not in shared_preload_libraries "
            f"(now {','.join(now) or 'empty'!r}). To use it, run ALTER SYSTEM SET shared_preload_libraries = "
            f"'{wanted}'; (or set it in postgresql.conf), restart PostgreSQL, then run `carewatch migrate` again")


def migrate(database_url: str, *, log: bool = False) -> list[str]:
    """Apply what is missing; return the versions applied now."""
    applied_now: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            wanted = core_migrations()
            state = timescale_state(conn)
            if state == "preloaded":
                wanted += timescale_migrations()
            elif state == "not_preloaded":
                if any(v.startswith("timescale/") for v in done):
                    raise MigrationError(f"this database uses TimescaleDB, which the server no longer loads. "
                                         f"{not_preloaded_fix(conn)}")
                if log:
                    print(f"migrate: note: using plain PostgreSQL tables. {not_preloaded_fix(conn)}",
                          file=sys.stderr, flush=True)
            for migration in wanted:
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())  # no parameters: DDL files as written
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,))
                applied_now.append(migration.version)
                if log:
                    print(f"migrate: applied {migration.version}", flush=True)
        finally:
            # A failure that ended the session (a FATAL error) must surface as itself, not as
            # "the connection is closed" from this unlock; the server released the lock anyway.
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
    if log and not applied_now:
        print("migrate: database is up to date", flush=True)
    return applied_now


def with_database(database_url: str, name: str) -> str:
    """`database_url` naming database `name` instead (same server, user and options)."""
    info = psycopg.conninfo.conninfo_to_dict(database_url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items() if v is not None})


def database_name(database_url: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(database_url).get("dbname") or "")


def drop_database(database_url: str) -> None:
    """Drop the database named in the URL, closing its connections; nothing if it does not exist."""
    name = database_name(database_url)
    if not name:
        return
    with psycopg.connect(with_database(database_url, "postgres"), autocommit=True) as conn:
        drop = psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(psycopg.sql.Identifier(name)))


def ensure_database(database_url: str) -> bool:
    """Create the database named in the URL if it does not exist; True if created."""
    name = database_name(database_url)
    if not name:
        return False
    with psycopg.connect(with_database(database_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return True
