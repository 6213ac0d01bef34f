"""Services of a fault run's own: a PostgreSQL cluster (initdb + pg_ctl), redis-server, a local S3
(moto) and tansu storing in it, and the Carewatch processes; all stopped at the end, whatever happens.

Never the machine's shared PostgreSQL or Redis: every server here listens on a free loopback port
and keeps its data under the run's own directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from carewatch.services import Broker, ServiceUnavailable, free_port, start_broker, wait_for_port

POSTGRES_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def postgres_bin(name: str) -> str:
    """A PostgreSQL server tool: Debian's newest versioned folder, else the PATH."""
    for folder in POSTGRES_BINS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise ServiceUnavailable(f"{name} not found (apt-get install postgresql)")
    return found


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServiceUnavailable(f"{Path(command[0]).name} failed: {(done.stderr or done.stdout).strip()}")


def _owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceUnavailable("running as root needs the `postgres` user for initdb") from exc
    return user.pw_uid, user.pw_gid


@dataclass
class Child:
    """A process started in a session of its own, so that its whole group can be killed."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # on purpose (a fault), not by itself

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL of the group after `timeout`."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        self.kill()

    def tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Postgres:
    """A PostgreSQL cluster of the run's own: initdb'd in a folder of its own under the system's temporary
    folder (where the `postgres` user can reach it), on a free port, trust auth; its log is copied to
    `log` when it is shut down."""

    log: Path
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carewatch-faults-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.home / "pgdata"

    @property
    def sockets(self) -> Path:
        return self.home / "pgsock"

    def url(self, database: str = "carewatch") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.data.mkdir(parents=True)
        self.sockets.mkdir(parents=True)
        owner = _owner()
        if owner:
            os.chmod(self.home, 0o755)
            for path in (self.data, self.sockets):
                os.chown(path, *owner)
        _run([postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
              "--no-instructions"])

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        _run([postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.sockets / "postgres.log"), "-o",
              options, "-w", "-t", "60", "start"])
        self._wait()

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_postgres([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t",
                                     "60", "stop"]), check=False, capture_output=True, timeout=90)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def shutdown(self) -> None:
        """Stop it for good, however it is (immediate: its data is thrown away)."""
        if self.running():
            self.stop("immediate")
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: the postmaster by its pid
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        with contextlib.suppress(OSError):
            shutil.copyfile(self.sockets / "postgres.log", self.log)
        shutil.rmtree(self.home, ignore_errors=True)  # thrown away: the run's snapshot is what is kept


@dataclass
class Services:
    """Everything one run starts, so that `close()` can stop all of it."""

    home: Path
    children: list[Child] = field(default_factory=list)
    postgres: Postgres | None = None
    redis_port: int = 0
    redis: Child | None = None
    s3: Child | None = None
    s3_port: int = 0
    broker: Broker | None = None
    broker_port: int = 0

    def spawn(self, name: str, command: list[str], env: Mapping[str, str] | None = None) -> Child:
        log = self.home / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(command, env=dict(env or os.environ), stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def carewatch(self, name: str, command: list[str], env: Mapping[str, str]) -> Child:
        return self.spawn(name, [sys.executable, "-m", "carewatch", *command], env)

    # PostgreSQL

    def start_postgres(self) -> Postgres:
        self.postgres = Postgres(self.home / "postgres.log")
        self.postgres.init()
        self.postgres.start()
        return self.postgres

    # Redis

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start_redis(self) -> Child:
        self.redis_port = self.redis_port or free_port()
        binary = shutil.which("redis-server")
        if not binary:
            raise ServiceUnavailable("redis-server not found (apt-get install redis-server)")
        self.redis = self.spawn("redis", [binary, "--bind", "127.0.0.1", "--port", str(self.redis_port),
                                          "--save", "", "--appendonly", "no", "--daemonize", "no"])
        wait_for_port(self.redis_port)
        return self.redis

    # S3 and the broker

    @property
    def aws_env(self) -> dict[str, str]:
        """What tansu's object store reads to reach the local S3."""
        return {"AWS_ENDPOINT": f"http://127.0.0.1:{self.s3_port}", "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "carewatch", "AWS_SECRET_ACCESS_KEY": "carewatch",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def start_s3(self, bucket: str = "tansu") -> None:
        self.s3_port = free_port()
        self.s3 = self.spawn("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(self.s3_port)])
        wait_for_port(self.s3_port, timeout=60)
        response = httpx.put(f"http://127.0.0.1:{self.s3_port}/{bucket}", timeout=30)
        if response.status_code != 200:
            raise ServiceUnavailable(f"could not create the S3 bucket: {response.status_code} {response.text}")

    def start_broker(self) -> Broker:
        self.broker_port = self.broker_port or free_port()
        self.broker = start_broker(self.broker_port, self.home / "tansu.log", storage_engine="s3://tansu/",
                                   env=self.aws_env, new_session=True)
        return self.broker

    def kill_broker(self) -> None:
        if self.broker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.broker.process.pid, signal.SIGKILL)
            self.broker.process.wait(timeout=15)

    # the end

    def close(self) -> None:
        """Stop every process (Carewatch's first, then the services) and the PostgreSQL cluster."""
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop(timeout=10)
        if self.broker is not None:
            with contextlib.suppress(Exception):
                self.kill_broker()
        if self.postgres is not None:
            with contextlib.suppress(Exception):
                self.postgres.shutdown()
