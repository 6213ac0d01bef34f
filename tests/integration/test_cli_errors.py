"""Every configuration or connection problem, in every command, is one line on stderr saying what to do
(exit status 2), never a traceback; a missing database reads the same whichever command meets it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import psycopg
import pytest

from carewatch import services
from carewatch.services import ServiceUnavailable, free_port, require_database
from procs import ROOT
from support import ADMIN_URL, CREATED_DATABASES

pytestmark = pytest.mark.services

GOOD_DB = "CAREWATCH_DATABASE_URL"


def run(*args: str, **env: str) -> str:
    """Run `carewatch args...`; assert the one-line refusal and return it."""
    done = subprocess.run([sys.executable, "-m", "carewatch", *args], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    said = done.stderr.strip()
    assert done.returncode == 2, (args, done.returncode, done.stdout, said)
    assert "Traceback" not in said and len(said.splitlines()) == 1, said
    prefix = f"carewatch {args[0]}: "
    assert said.startswith(prefix), said
    return said.removeprefix(prefix)


def test_a_wrong_database_user_is_named_with_the_fix(database_url: str) -> None:
    wrong = psycopg.conninfo.make_conninfo(database_url, user="nobody_here")
    for args in (("migrate",), ("token", "list"), ("worker",), ("api",), ("scheduler",)):
        said = run(*args, CAREWATCH_DATABASE_URL=wrong)
        assert said.startswith("PostgreSQL at 127.0.0.1:5432 refused user 'nobody_here' (role \"nobody_here\" "
                               "does not exist): set CAREWATCH_DATABASE_URL with a user it accepts"), said


def test_mistyped_url_schemes_are_refused_with_the_expected_form(database_url: str) -> None:
    said = run("token", "list", CAREWATCH_DATABASE_URL="postgresq://postgres@127.0.0.1:5432/carewatch")
    assert said == ("CAREWATCH_DATABASE_URL 'postgresq://postgres@127.0.0.1:5432/carewatch' is not a PostgreSQL "
                    "URL: expected postgresql://USER@HOST:PORT/DATABASE, e.g. "
                    "postgresql://postgres@127.0.0.1:5432/carewatch")
    said = run("scheduler", CAREWATCH_DATABASE_URL=database_url, CAREWATCH_REDIS_URL="rdis://127.0.0.1:6379/0")
    assert said.startswith("CAREWATCH_REDIS_URL 'rdis://127.0.0.1:6379/0' is not a Redis URL: expected redis://")
    said = run("simulate", CAREWATCH_KAFKA_URL="kafak://127.0.0.1:9092")
    assert said.startswith("CAREWATCH_KAFKA_URL 'kafak://127.0.0.1:9092': expected kafka://HOST:PORT")
    said = run("worker", CAREWATCH_DATABASE_URL=database_url, CAREWATCH_KAFKA_URL="127.0.0.1")
    assert said.startswith("CAREWATCH_KAFKA_URL '127.0.0.1': expected kafka://HOST:PORT")


def test_simulate_without_a_broker_or_an_api_says_what_to_start() -> None:
    said = run("simulate", "--days", "0.1", CAREWATCH_KAFKA_URL=f"kafka://127.0.0.1:{free_port()}")
    assert said.startswith("No Kafka broker answered at kafka://127.0.0.1:") and "carewatch broker" in said
    api = f"http://127.0.0.1:{free_port()}"
    said = run("simulate", "--days", "0.02", "--speed", "0", "--target", "http", "--api-url", api)
    assert said.startswith(f"the API did not answer at {api} (") and "start `carewatch api`" in said


def test_a_missing_database_reads_the_same_in_every_command() -> None:
    missing = f"postgresql://postgres@127.0.0.1:5432/cw_missing_{uuid.uuid4().hex[:8]}"
    name = missing.rsplit("/", 1)[1]
    answers = {args: run(*args, CAREWATCH_DATABASE_URL=missing)
               for args in (("token", "list"), ("thresholds", "show", "--commissioner", "LA-X"), ("worker",),
                            ("api",), ("scheduler",))}
    expected = (f"the database '{name}' does not exist on PostgreSQL at 127.0.0.1:5432: run `carewatch migrate` "
                "to create it, or set CAREWATCH_DATABASE_URL to the database you meant")
    assert set(answers.values()) == {expected}, answers
    with psycopg.connect(ADMIN_URL) as conn:  # none of them created it
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_an_unmigrated_database_says_run_migrate() -> None:
    name = f"carewatch_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    CREATED_DATABASES.append(name)
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    for args in (("token", "list"), ("scheduler",), ("api",)):
        assert run(*args, CAREWATCH_DATABASE_URL=url) == (
            f"the database '{name}' at 127.0.0.1:5432 has no Carewatch tables: run `carewatch migrate` first")


def test_redis_down_is_one_line_for_every_process_that_needs_it(database_url: str) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    for args in (("api",), ("scheduler",), ("worker",)):
        said = run(*args, CAREWATCH_DATABASE_URL=database_url, CAREWATCH_REDIS_URL=down)
        assert said.startswith(f"Redis did not answer at {down} (") and "CAREWATCH_REDIS_URL" in said, said


def test_the_api_refuses_a_port_already_in_use(database_url: str) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        said = run("api", "--port", str(port), CAREWATCH_DATABASE_URL=database_url)
    assert said.startswith(f"port {port} on 127.0.0.1 is in use (") and "pass --port" in said


def test_postgres_down_for_migrate_says_how_to_start_it() -> None:
    said = run("migrate", CAREWATCH_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/carewatch")
    assert said.startswith("PostgreSQL did not answer at 127.0.0.1:") and "(Connection refused)" in said
    assert "pg_ctlcluster" in said


def test_a_missing_database_points_at_the_demo_database_when_there_is_one(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    demo_name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    monkeypatch.setattr(services, "DEMO_DATABASE", demo_name)  # stands in for carewatch_demo
    with pytest.raises(ServiceUnavailable) as refused:
        require_database(f"postgresql://postgres@127.0.0.1:5432/cw_missing_{uuid.uuid4().hex[:8]}")
    assert str(refused.value).endswith(
        f"(to reach the running demo's database: export CAREWATCH_DATABASE_URL="
        f"postgresql://postgres@127.0.0.1:5432/{demo_name})")
