"""One logging setup for every Carewatch process: plain lines or JSON lines, never terminal escape codes.

`setup_logging` is called once by `carewatch <command>` before the command runs. Routine lines
(a job that ran, a probe that answered) show only at DEBUG; an outage of a service is logged
once when it starts and once when it ends (`Outage`); a client's mistake is one line, never a
traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from carewatch.settings import Settings

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Loggers whose INFO lines are routine (apscheduler's "Running job ..." every second, faust's and
# aiokafka's start-up chatter): shown only when CAREWATCH_LOG_LEVEL is DEBUG.
ROUTINE_LOGGERS = ("apscheduler", "faust", "mode", "aiokafka", "httpx", "httpcore", "websockets")

# Requests that orchestrators and Prometheus make every few seconds: access lines only at DEBUG.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_ESCAPE = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")


def plain(text: str) -> str:
    """`text` without terminal escape sequences (colours, cursor moves)."""
    return _ESCAPE.sub("", text)


def one_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, with any escape codes a library put in its message removed."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return plain(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, process, and the traceback if any."""

    def __init__(self, command: str = "") -> None:
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": plain(record.getMessage()),
            "command": self.command,
            "pid": record.process,
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = plain(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _client_mistake(error: BaseException | None) -> bool:
    """A GraphQL error that is the caller's (bad query, refused input), not the server's."""
    from graphql import GraphQLError

    return error is None or isinstance(error, GraphQLError) or getattr(error, "client_mistake", False) is True


def _service_away(error: BaseException | None) -> bool:
    """A GraphQL error caused by the database not answering (an outage, said elsewhere once)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    return isinstance(error, (psycopg.OperationalError, PoolTimeout))


class ClientMistakes(logging.Filter):
    """strawberry logs every GraphQL error at ERROR with its traceback; a client's mistake becomes one
    INFO line instead, and a request that failed because the database is away one WARNING line, so
    tracebacks in the log are the server's own faults."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "strawberry.execution":
            return True
        error = record.exc_info[1] if record.exc_info else None
        if _client_mistake(error):
            record.msg, record.args = "GraphQL request refused: %s", (plain(str(record.msg)),)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        elif _service_away(error):
            record.msg, record.args = "GraphQL request failed, the database did not answer: %s", (
                one_line(error) if error else "",)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return record.levelno >= logging.getLogger().getEffectiveLevel()


class Probes(logging.Filter):
    """Drops uvicorn's access lines for health probes and scrapes unless the level is DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.access" or logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        path = str(args[2]).split("?", 1)[0] if len(args) >= 3 else ""
        return path not in PROBE_PATHS


def setup_logging(settings: Settings, command: str = "", stream: IO[str] | None = None) -> None:
    """Configure the root logger from CAREWATCH_LOG_LEVEL and CAREWATCH_LOG_FORMAT (stderr by default)."""
    level_name = settings.log_level.upper()
    if level_name not in LEVELS:
        raise SystemExit(f"CAREWATCH_LOG_LEVEL must be one of {', '.join(LEVELS)}; got {settings.log_level!r}")
    log_format = settings.log_format.lower()
    if log_format not in FORMATS:
        raise SystemExit(f"CAREWATCH_LOG_FORMAT must be text or json; got {settings.log_format!r}")
    level = logging.getLevelName(level_name)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(command) if log_format == "json" else TextFormatter())
    handler.addFilter(ClientMistakes())
    handler.addFilter(Probes())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTINE_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    logging.captureWarnings(True)


class Outage:
    """A service that stopped answering: one line when the outage starts, one when it ends.

    Call `failed(exc)` on every failed attempt and `ok()` on every success; the attempts in
    between are logged at DEBUG only, so a retry every second does not fill the log.
    """

    def __init__(self, log: logging.Logger, what: str, *, retrying: str = "retrying") -> None:
        self.log, self.what, self.retrying = log, what, retrying
        self.since: float | None = None
        self.failures = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s unavailable (%s); %s, and will say when it is back",
                             self.what, one_line(exc), self.retrying)
        else:
            self.log.debug("%s still unavailable (%s)", self.what, one_line(exc))

    def ok(self) -> None:
        if self.since is None:
            return
        seconds = time.monotonic() - self.since
        self.log.warning("%s available again after %.0f s (%d failed attempts)", self.what, seconds, self.failures)
        self.since, self.failures = None, 0
