"""Real Carewatch processes for tests: the worker and the API as subprocesses, and Kafka helpers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from carewatch.schema.events import message_key
from carewatch.services import Broker, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        # What it printed last stays readable as `process.output` once the pipe is closed.
        process.output = process.stdout.read()  # type: ignore[attr-defined]
        process.stdout.close()


@contextmanager
def cli_process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m carewatch <args>` with `env`, its output piped; stopped on leaving."""
    process = subprocess.Popen([sys.executable, "-m", "carewatch", *args], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        _stop(process)


@contextmanager
def worker(broker: Broker, database_url: str, topic: str, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": database_url,
           "CAREWATCH_CONSUMER_GROUP": f"cw-test-{uuid.uuid4().hex[:8]}", "CAREWATCH_EVENTS_TOPIC": topic,
           "CAREWATCH_DEAD_LETTER_TOPIC": f"{topic}.dead-letter", "CAREWATCH_WORKER_SESSION_TIMEOUT": "6",
           "CAREWATCH_BATCH_WITHIN": "0.1", **extra}
    with cli_process(env, "worker") as process:
        yield process


@contextmanager
def scheduler(database_url: str, redis_url: str, **extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """`carewatch scheduler`: the sweeps, including the settled UNKNOWN_CARER and PAY_BELOW_MINIMUM."""
    env = {**os.environ, "CAREWATCH_DATABASE_URL": database_url, "CAREWATCH_REDIS_URL": redis_url, **extra}
    with cli_process(env, "scheduler") as process:
        yield process


def _key(line: str) -> bytes | None:
    try:
        return message_key(json.loads(line)).encode() or None
    except ValueError:
        return None


async def produce(broker: Broker, topic: str, lines: list[str]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        for line in lines:
            await producer.send(topic, line.encode(), key=_key(line))
        await producer.flush()
    finally:
        await producer.stop()


async def dead_letters(broker: Broker, topic: str, want: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Read the dead-letter topic from the start until `want` records (or the timeout)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer._client.force_metadata_update()  # the worker creates the topic
        assert partitions, f"no topic {topic}"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        while len(records) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                records.extend(json.loads(m.value) for m in messages if m.value is not None)
    finally:
        await consumer.stop()
    return records


def wait_for(database_url: str, check: Callable[[psycopg.Connection[Any]], bool],
             process: subprocess.Popen[bytes], timeout: float = 25.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else "worker died"
        with psycopg.connect(database_url) as conn:
            if check(conn):
                return
        time.sleep(0.2)
    raise AssertionError("the worker did not get there in time")


def scalar(conn: psycopg.Connection[Any], sql: str, *params: Any) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None




def create_token(database_url: str, role: str, scope: str | None = None) -> str:
    """A token made the way an administrator makes one: `carewatch token create`."""
    args = [sys.executable, "-m", "carewatch", "token", "create", "--role", role]
    if scope:
        args += ["--scope", scope, "--force"]  # tests make tokens before the scope's events arrive
    done = subprocess.run(args, env={**os.environ, "CAREWATCH_DATABASE_URL": database_url}, cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@contextmanager
def api_server(broker: Broker, database_url: str, redis_url: str, topic: str,
               **extra: str) -> Iterator[str]:
    """`carewatch api` on a free port; yields its base URL once /healthz answers."""
    port = free_port()
    env = {**os.environ, "CAREWATCH_KAFKA_URL": broker.kafka_url, "CAREWATCH_DATABASE_URL": database_url,
           "CAREWATCH_REDIS_URL": redis_url, "CAREWATCH_EVENTS_TOPIC": topic, **extra}
    base = f"http://127.0.0.1:{port}"
    with cli_process(env, "api", "--port", str(port)):
        wait_for_port(port, timeout=30)
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/healthz").status_code != 200:
            assert time.monotonic() < deadline, "the API never became healthy"
            time.sleep(0.2)
        yield base


def graphql(base: str, token: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return dict(body["data"])
