"""`carewatch thresholds set`: a commissioner's overrides reach the deadline sweeps; bad input is refused.

Also: `carewatch scheduler` names the missing service and how to start it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from tests.integration.alert_fixtures import START, add_package, add_shift

from carewatch.alerts.sweeps import SweepConfig, sweep_absences
from support import ROOT

pytestmark = pytest.mark.services


def _cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carewatch", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "CAREWATCH_DATABASE_URL": database_url, **env})


async def _late_starts(url: str, minutes: float) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        changed = await sweep_absences(conn, START + timedelta(minutes=minutes), SweepConfig())
    return [a.kind for a in changed]


async def test_commissioner_override_moves_the_late_start_deadline(fresh_database_url: str) -> None:
    url = fresh_database_url
    with psycopg.connect(url, autocommit=True) as db:
        add_package(db, commissioner_id="LA-1")
        add_shift(db, "SH-1")
    done = _cli(url, "thresholds", "set", "--commissioner", "LA-1", "late_start_minutes=20",
                "missed_visit_minutes=90")
    assert done.returncode == 0, done.stderr
    assert "not been registered" in done.stderr  # allowed, but said
    with psycopg.connect(url) as db:
        row = db.execute("SELECT thresholds FROM commissioner_thresholds WHERE commissioner_id = 'LA-1'").fetchone()
    assert row is not None and row[0] == {"late_start_minutes": 20, "missed_visit_minutes": 90}

    # The default deadline (15 min) has passed, the commissioner's (20 min) has not.
    assert await _late_starts(url, 19) == []
    assert await _late_starts(url, 20) == ["LATE_START"]

    # A second set merges; --clear drops one override; show prints them.
    assert _cli(url, "thresholds", "set", "--commissioner", "LA-1", "overrun_minutes=45",
                "--clear", "missed_visit_minutes").returncode == 0
    shown = _cli(url, "thresholds", "show", "--commissioner", "LA-1")
    assert shown.stdout.strip() == '{"late_start_minutes": 20.0, "overrun_minutes": 45.0}'


@pytest.mark.parametrize("assignment", ["late_start_minute=20", "late_start_minutes=-1",
                                        "late_start_minutes=soon", "late_start_minutes", "late_start_minutes=nan"])
def test_bad_assignments_are_refused_and_change_nothing(fresh_database_url: str, assignment: str) -> None:
    done = _cli(fresh_database_url, "thresholds", "set", "--commissioner", "LA-1", assignment)
    assert done.returncode == 2 and "carewatch thresholds:" in done.stderr
    with psycopg.connect(fresh_database_url) as db:
        assert db.execute("SELECT count(*) FROM commissioner_thresholds").fetchone() == (0,)


@pytest.mark.parametrize(("env", "named"), [
    ({"CAREWATCH_REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis did not answer at redis://127.0.0.1:1/0"),
    ({"CAREWATCH_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}, "PostgreSQL did not answer"),
])
def test_scheduler_names_the_missing_service(fresh_database_url: str, env: dict[str, str], named: str) -> None:
    done = _cli(fresh_database_url, "scheduler", **env)
    assert done.returncode == 2
    assert named in done.stderr and "start the local server" in done.stderr
    assert "Traceback" not in done.stderr
