"""The real worker process (`python -m carewatch worker`) against tansu and PostgreSQL.

Each test has its own database, topics and consumer group, so tests never see each
other's events on the session's broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg
import pytest

from carewatch.services import Broker
from procs import dead_letters, produce, scalar, wait_for, worker
from support import ROOT, contract_lines

pytestmark = pytest.mark.services

LEDGER = ("SELECT planned_seconds, scheduled_seconds, actual_seconds, payable_seconds, rate_seconds,"
          " spend_pence::text FROM shift_ledger WHERE shift_id = %s")
SH1 = (3600, 3600, 3395, 3395, 3395 * 4800, "4526.666667")


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("shifts", "clock_events", "packages", "invoices", "held_events")} | {
            "ledger": conn.execute("SELECT shift_id, actual_seconds, payable_seconds, rate_seconds,"
                                   " attendance FROM shift_ledger ORDER BY 1").fetchall(),
            "events": conn.execute("SELECT event_id, received_at FROM events ORDER BY 1").fetchall(),
            "rejected": conn.execute("SELECT event_id, stage, reason, rejected_at FROM rejected_events"
                                     " ORDER BY 1, 2").fetchall(),
        }


async def test_worker_applies_the_contract_stream_and_ignores_a_replay(broker: Broker,
                                                                       fresh_database_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    valid, invalid = contract_lines("valid.jsonl"), contract_lines("invalid.jsonl")
    with worker(broker, fresh_database_url, topic) as process:
        await produce(broker, topic, valid + invalid)
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM events") == len(valid)
                 and scalar(c, "SELECT count(*) FROM rejected_events") == len(invalid)
                 and scalar(c, "SELECT count(*) FROM shift_ledger") == 2, process)
        with psycopg.connect(fresh_database_url) as conn:
            assert conn.execute(LEDGER, ("SH-1",)).fetchone() == SH1
            assert conn.execute("SELECT scheduled_seconds, actual_seconds FROM shift_ledger"
                                " WHERE shift_id = 'SH-2'").fetchone() == (0, 0)
            reasons = dict(conn.execute("SELECT raw, reason FROM rejected_events").fetchall())
        assert set(reasons) == set(invalid) and all(len(r) > 10 for r in reasons.values())
        records = await dead_letters(broker, f"{topic}.dead-letter", len(invalid))
        assert sorted(r["raw"] for r in records) == sorted(invalid)
        assert all(r["reason"] and r["stage"] in ("decode", "schema", "semantic") for r in records)

        before = snapshot(fresh_database_url)
        await produce(broker, topic, valid + invalid)
        # Every bad line is dead-lettered again once the replay has been read: then compare.
        assert len(await dead_letters(broker, f"{topic}.dead-letter", 2 * len(invalid))) == 2 * len(invalid)
        time.sleep(0.5)
        assert snapshot(fresh_database_url) == before


async def test_permuted_order_gives_the_same_ledger(broker: Broker, fresh_database_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    lines = {json.loads(line)["event_id"]: line for line in contract_lines("valid.jsonl")}
    # Clock-outs first, then clock-ins, the shift after its clock-ins, the package and parties last.
    order = ["ex-9", "ex-10", "ex-8", "ex-7", "ex-11", "ex-6", "ex-10b", "ex-12", "ex-13",
             "ex-5", "ex-4", "ex-3", "ex-2", "ex-1"]
    assert sorted(order) == sorted(lines)
    with worker(broker, fresh_database_url, topic) as process:
        await produce(broker, topic, [lines[i] for i in order])
        wait_for(fresh_database_url, lambda c: scalar(c, "SELECT count(*) FROM events") == len(order)
                 and scalar(c, "SELECT count(*) FROM held_events") == 0, process)
        with psycopg.connect(fresh_database_url) as conn:
            assert conn.execute(LEDGER, ("SH-1",)).fetchone() == SH1
            assert scalar(conn, "SELECT scheduled_seconds FROM shift_ledger WHERE shift_id = 'SH-2'") == 0
            assert scalar(conn, "SELECT cancelled_by FROM shifts WHERE shift_id = 'SH-2'") == "person"


async def test_held_event_expires_to_rejected_and_dead_letter(broker: Broker,
                                                             fresh_database_url: str) -> None:
    topic = f"care-events-{uuid.uuid4().hex[:8]}"
    orphan = json.loads(contract_lines("valid.jsonl")[6]) | {"event_id": "orphan-9", "shift_id": "SH-9"}
    with worker(broker, fresh_database_url, topic, CAREWATCH_HOLD_LIMIT_SECONDS="1") as process:
        await produce(broker, topic, [json.dumps(orphan)])
        stage = "SELECT stage FROM rejected_events WHERE event_id = 'orphan-9'"
        wait_for(fresh_database_url, lambda c: scalar(c, stage) is not None, process)
        with psycopg.connect(fresh_database_url) as conn:
            row = conn.execute("SELECT stage, reason FROM rejected_events"
                               " WHERE event_id = 'orphan-9'").fetchone()
            assert row == ("unresolved", "shift SH-9 was never seen within 1 s")
            assert scalar(conn, "SELECT count(*) FROM held_events") == 0
            assert scalar(conn, "SELECT count(*) FROM clock_events") == 0
        records = await dead_letters(broker, f"{topic}.dead-letter", 1)
        assert [(r["event_id"], r["stage"]) for r in records] == [("orphan-9", "unresolved")]


def _run_worker_cli(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carewatch", "worker"], env={**os.environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def test_worker_says_which_service_is_missing(database_url: str) -> None:
    from carewatch.services import free_port

    no_kafka = _run_worker_cli(CAREWATCH_DATABASE_URL=database_url,
                               CAREWATCH_KAFKA_URL=f"kafka://127.0.0.1:{free_port()}")
    assert no_kafka.returncode == 2 and "No Kafka broker answered" in no_kafka.stderr
    no_pg = _run_worker_cli(CAREWATCH_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert no_pg.returncode == 2 and "PostgreSQL did not answer" in no_pg.stderr
    never_made = f"postgresql://postgres@127.0.0.1:5432/cw_never_migrated_{uuid.uuid4().hex[:6]}"
    unmigrated = _run_worker_cli(CAREWATCH_DATABASE_URL=never_made)
    assert unmigrated.returncode == 2 and "carewatch migrate" in unmigrated.stderr
