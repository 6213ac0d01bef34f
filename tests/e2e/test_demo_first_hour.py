"""`carewatch demo` as a newcomer's first hour: a week backfilled before going live, so rolling 7-day
figures read sensibly; ready tokens for each role on real ids; the settings other commands need (and a
file to source); the simulated time as it goes; and a second demo refused before it touches anything."""

from __future__ import annotations

import argparse
import os
import queue
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psycopg
import pytest

from carewatch import demo
from carewatch.firsthour import claim_database
from carewatch.schema.migrate import database_name
from carewatch.services import free_port
from procs import graphql

pytestmark = pytest.mark.services

ROLES = ("admin", "commissioner", "safeguarding", "provider", "ingest")
ROLLING = "{ packages(first: 500) { edges { node { id rolling7Days { plannedMinutes actualMinutes } } } } }"


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line.rstrip("\n"))


def _until(lines: queue.Queue[str], seen: list[str], pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if found := re.search(pattern, line):
            return found
    raise AssertionError(f"no line matching {pattern!r}; the demo said:\n" + "\n".join(seen))


def _second_demo(tmp: Path, env: dict[str, str], port: int) -> subprocess.CompletedProcess[str]:
    tmp.mkdir()
    return subprocess.run([sys.executable, "-m", "carewatch", "demo", "--port", str(port), "--duration", "5"],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_first_hour(fresh_database_url: str, redis_url: str, tmp_path: Path) -> None:
    url, port = fresh_database_url, free_port()
    env = {**os.environ, "CAREWATCH_DATABASE_URL": url, "CAREWATCH_REDIS_URL": redis_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "carewatch", "demo", "--port", str(port), "--speed", "300", "--packages", "8",
         "--duration", "60"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _until(lines, seen, r"^demo: backfilling [\d,]+ events .* 7 simulated days of care", 60)
        _until(lines, seen, r"^demo: backfill applied in", 120)
        board = _until(lines, seen, rf"open http://127\.0\.0\.1:{port}/board and paste the safeguarding token", 60)
        assert board
        tokens: dict[str, tuple[str | None, str]] = {}
        for role in ROLES:
            found = _until(lines, seen, rf"^  {role}(?: (\S+))?\s+(cw_\S+)$", 10)
            tokens[role] = (found.group(1), found.group(2))
        exported = {name: shlex.split(_until(lines, seen, rf"^  export {name}=(.+)$", 10).group(1))[0]
                    for name in ("CAREWATCH_DATABASE_URL", "CAREWATCH_REDIS_URL", "CAREWATCH_KAFKA_URL",
                                 "CAREWATCH_CLOCK")}
        _until(lines, seen, r"^demo: live from simulated \w{3} \d\d \w{3} \d{4} \d\d:\d\d", 10)

        # The ids are real: the scoped tokens name a commissioner and a provider in the simulated data.
        assert exported["CAREWATCH_DATABASE_URL"] == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1 FROM commissioners WHERE commissioner_id = %s",
                                (tokens["commissioner"][0],)).fetchone()
            assert conn.execute("SELECT 1 FROM providers WHERE provider_id = %s", (tokens["ingest"][0],)).fetchone()
        assert tokens["safeguarding"][0] == tokens["commissioner"][0] and tokens["provider"][0] == tokens["ingest"][0]
        assert tokens["admin"][0] is None

        # The tokens work, each within its scope; after the backfill every package has a whole week behind
        # it (not the -90% of one simulated day against a 7-day plan).
        base = f"http://127.0.0.1:{port}"
        everything = graphql(base, tokens["admin"][1], ROLLING)["packages"]["edges"]
        mine = graphql(base, tokens["commissioner"][1], ROLLING)["packages"]["edges"]
        assert len(everything) == 8 and 0 < len(mine) < 8
        weeks = [edge["node"]["rolling7Days"] for edge in everything]
        for week in weeks:  # one simulated day would read about 1/7 of the plan; a package may have missed visits
            assert float(week["actualMinutes"]) > 0.35 * float(week["plannedMinutes"]), weeks
        share = sum(float(w["actualMinutes"]) for w in weeks) / sum(float(w["plannedMinutes"]) for w in weeks)
        assert 0.7 < share < 1.2, weeks

        # The settings printed (and written to .carewatch/env) are what the other commands need.
        env_file = tmp_path / ".carewatch" / "env"
        assert env_file.stat().st_mode & 0o077 == 0  # the tokens are in it: readable by the user only
        sourced = dict(
            re.match(r"export (\w+)=(.*)", line).groups()  # type: ignore[union-attr]
            for line in env_file.read_text().splitlines() if line.startswith("export "))
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CAREWATCH_")}
        listed = subprocess.run([sys.executable, "-m", "carewatch", "token", "list"], capture_output=True, text=True,
                                env={**clean, **{k: shlex.split(v)[0] for k, v in sourced.items()}}, timeout=30)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[0].split()[:3] == ["ID", "ROLE", "SCOPE"]
        assert len(listed.stdout.splitlines()) == 1 + len(ROLES)
        assert sourced["CAREWATCH_DEMO_SAFEGUARDING_TOKEN"] == tokens["safeguarding"][1]

        # A second demo is refused, in one line, before it touches anything: same port, then same database.
        busy = _second_demo(tmp_path / "second", env, port)
        assert busy.returncode == 2 and busy.stdout == "", busy.stdout
        assert busy.stderr.strip().startswith(f"demo: port {port} on 127.0.0.1 is in use")
        assert f"pass --port {port + 1}" in busy.stderr
        taken = _second_demo(tmp_path / "third", env, free_port())
        assert taken.returncode == 2 and taken.stdout == "", taken.stdout
        name = database_name(url)
        assert taken.stderr.strip().startswith(
            f"demo: another demo is using the database {name}, serving http://127.0.0.1:{port}: stop it first")
        assert not (tmp_path / "second" / ".carewatch").exists() and not (tmp_path / "third" / ".carewatch").exists()

        # The simulated time is reported as the demo goes, and the first demo carried on regardless.
        _until(lines, seen, r"^demo: simulated time \w{3} \d\d \w{3} \d\d:\d\d \w+; \d+/\d+ live events sent; "
                            r"8 packages, [\d,]+ carer-minutes delivered \(last 7 days\) = \d+% of plan", 30)
        assert process.wait(timeout=90) == 0, "\n".join(seen)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        reader.join(timeout=10)  # it reaches the end of the output once the demo has gone
        process.stdout.close()


def test_the_demo_refuses_its_own_database_while_anything_else_uses_it(
        fresh_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Its own database (carewatch_demo, reset on each run; a test database stands in for it) is dropped
    at start: with another connection open, the demo refuses and leaves it as it was."""
    monkeypatch.setattr(demo, "DEMO_DATABASE_URL", fresh_database_url)
    monkeypatch.delenv("CAREWATCH_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(host="127.0.0.1", port=free_port(), embedded=False)
    with psycopg.connect(fresh_database_url, application_name="psql") as other:
        other.execute("CREATE TABLE keep_me (id int)")
        other.commit()
        assert demo.run_demo(args) == 2
    said = capsys.readouterr()
    name = database_name(fresh_database_url)
    assert said.err.strip() == (
        f"demo: the database {name} has 1 open connection(s) (psql), which the demo would cut off when it starts "
        "afresh: stop those processes (a demo that did not stop cleanly?), or set CAREWATCH_DATABASE_URL to "
        "another database")
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT to_regclass('keep_me') IS NOT NULL").fetchone() == (True,)
    assert not (tmp_path / ".carewatch").exists()


def test_the_claim_is_released_when_the_demo_stops(fresh_database_url: str) -> None:
    first = claim_database(fresh_database_url, own=False, address="http://127.0.0.1:1")
    first.close()
    again = claim_database(fresh_database_url, own=False, address="http://127.0.0.1:2")
    again.close()


def test_a_busy_port_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "carewatch", "demo", "--port", str(port)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "CAREWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"demo: port {port} on 127.0.0.1 is in use (Address already in use): another "
                                  f"demo or API is there? stop it (Ctrl-C in its terminal), or pass --port {port + 1}")
    assert list(tmp_path.iterdir()) == []
