"""What the demo gives a newcomer in the first hour: its database to itself (a second demo is refused
before anything is touched), a ready token for each role on real ids, and the environment that the
other `carewatch` commands need to reach it."""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from carewatch.schema.migrate import database_name, with_database
from carewatch.security.tokens import create_token
from carewatch.services import ServiceUnavailable

APPLICATION = "carewatch demo"  # application_name of the demo's own connections (and its children's)


def _lock_key(database: str) -> int:
    """The advisory lock a demo holds, on the server's maintenance database, for the database it uses."""
    digest = hashlib.sha256(f"carewatch-demo:{database}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def claim_database(database_url: str, *, own: bool, address: str) -> psycopg.Connection[Any]:
    """Hold the demo's claim on its database for as long as the returned connection stays open.

    Refused (ServiceUnavailable, nothing changed) when another demo holds it, or, for the demo's own
    database (which it resets), when anything else is connected to it.
    """
    name = database_name(database_url)
    conn = psycopg.connect(with_database(database_url, "postgres"), autocommit=True, connect_timeout=5,
                           application_name=f"{APPLICATION} {address}"[:63])
    try:
        key = _lock_key(name)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (row and row[0]):
            holder = conn.execute(
                """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                     AND l.classid::bigint = %s AND l.objid::bigint = %s""",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchone()
            serving = str(holder[0]).removeprefix(APPLICATION).strip() if holder else ""
            where = f", serving {serving}" if serving else ""
            raise ServiceUnavailable(
                f"another demo is using the database {name}{where}: stop it first (Ctrl-C in its terminal), "
                "or give this one its own database and port, e.g. CAREWATCH_DATABASE_URL="
                f"{_url_for(database_url, name + '_2')} carewatch demo --port 8001")
        if own:
            users = conn.execute(
                "SELECT count(*), string_agg(DISTINCT coalesce(nullif(application_name, ''), 'unnamed'), ', ')"
                " FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()
            if users and users[0]:
                raise ServiceUnavailable(
                    f"the database {name} has {users[0]} open connection(s) ({users[1]}), which the demo would "
                    "cut off when it starts afresh: stop those processes (a demo that did not stop cleanly?), "
                    "or set CAREWATCH_DATABASE_URL to another database")
    except BaseException:
        conn.close()
        raise
    return conn


def _url_for(database_url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(with_database(database_url, name))
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{info.get('host', '127.0.0.1')}:{info.get('port', 5432)}/{name}"


@dataclass(frozen=True)
class DemoToken:
    role: str
    scope: str | None
    secret: str

    @property
    def variable(self) -> str:
        return f"CAREWATCH_DEMO_{self.role.upper()}_TOKEN"


def scopes_in(feed: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The first commissioner and provider the simulated feed registers: real ids for the tokens."""
    commissioner = next(str(e["commissioner_id"]) for e in feed if e["type"] == "commissioner.registered")
    provider = next(str(e["provider_id"]) for e in feed if e["type"] == "provider.registered")
    return commissioner, provider


async def make_tokens(database_url: str, commissioner: str, provider: str) -> list[DemoToken]:
    """One token for each role, scoped to ids that exist in the demo's data."""
    wanted = [("admin", None), ("commissioner", commissioner), ("safeguarding", commissioner),
              ("provider", provider), ("ingest", provider)]
    made = []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for role, scope in wanted:
            created = await create_token(conn, role, scope, name=f"demo {role}")
            made.append(DemoToken(role, scope, created.secret))
        await conn.commit()
    return made


def environment(env: Mapping[str, str]) -> dict[str, str]:
    """The settings other `carewatch` commands need to talk to the demo's services and clock."""
    names = ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_KAFKA_URL", "CAREWATCH_CLOCK",
             "CAREWATCH_EVENTS_TOPIC", "CAREWATCH_TOPIC_PARTITIONS")
    return {name: env[name] for name in names if env.get(name)}


def write_env_file(path: Path, env: Mapping[str, str], tokens: Sequence[DemoToken]) -> None:
    """`source .carewatch/env` in another terminal: the demo's settings and tokens (readable by you only)."""
    lines = ["# Written by `carewatch demo`: source it in another terminal to talk to the running demo."]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in environment(env).items()]
    lines += [f"export {t.variable}={shlex.quote(t.secret)}" for t in tokens]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)


def token_lines(tokens: Sequence[DemoToken]) -> list[str]:
    width = max(len(f"{t.role} {t.scope or ''}") for t in tokens)
    return [f"  {(t.role + ' ' + (t.scope or '')).strip():<{width}}  {t.secret}" for t in tokens]
