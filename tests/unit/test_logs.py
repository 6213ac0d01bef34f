"""carewatch.logs: plain or JSON lines, routine lines at DEBUG, client mistakes without tracebacks,
and an outage said once when it starts and once when it ends."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from carewatch.graphql.errors import ClientError
from carewatch.logs import Outage, plain, setup_logging
from carewatch.settings import Settings


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("apscheduler", "faust", "aiokafka")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def _setup(**env: str) -> io.StringIO:
    stream = io.StringIO()
    settings = Settings(log_level=env.get("level", "INFO"), log_format=env.get("format", "text"))
    setup_logging(settings, command="test", stream=stream)
    return stream


def test_json_format_is_one_object_per_line_with_the_traceback_inside(restore_logging: None) -> None:
    stream = _setup(format="json")
    log = logging.getLogger("carewatch.test")
    log.info("first %s", "line")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "first line" and first["level"] == "INFO" and first["logger"] == "carewatch.test"
    assert first["command"] == "test" and "time" in first
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]


def test_text_lines_carry_no_terminal_escape_codes(restore_logging: None) -> None:
    stream = _setup()
    logging.getLogger("faust.worker").warning("\x1b[31mred\x1b[0m and \x1b[?25hcursor")
    out = stream.getvalue()
    assert "\x1b" not in out and "red and cursor" in out
    assert plain("\x1b]0;title\x07ok") == "ok"


def test_routine_job_lines_show_only_at_debug(restore_logging: None) -> None:
    stream = _setup()
    logging.getLogger("apscheduler.executors.default").info('Running job "sweep_fast" (scheduled at ...)')
    logging.getLogger("apscheduler.executors.default").warning("Run time of job was missed by 0:00:02")
    assert "Running job" not in stream.getvalue() and "missed by" in stream.getvalue()
    stream = _setup(level="DEBUG")
    logging.getLogger("apscheduler.executors.default").info('Running job "sweep_fast"')
    assert "Running job" in stream.getvalue()


def test_probe_access_lines_show_only_at_debug(restore_logging: None) -> None:
    stream = _setup()
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/healthz", "1.1", 200)
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", "/graphql", "1.1", 200)
    assert "/healthz" not in stream.getvalue() and "/graphql" in stream.getvalue()


def test_a_client_mistake_is_one_info_line_and_a_server_fault_keeps_its_traceback(restore_logging: None) -> None:
    from graphql import GraphQLError

    stream = _setup()
    strawberry = logging.getLogger("strawberry.execution")
    mistake = ClientError("first must be at most 500 (got 9000); page with `after`")
    strawberry.error(GraphQLError(str(mistake), original_error=mistake), exc_info=mistake)
    strawberry.error(GraphQLError("Cannot query field 'nope' on type 'Query'."), exc_info=None)
    out = stream.getvalue()
    assert "Traceback" not in out
    assert out.count("INFO strawberry.execution: GraphQL request refused:") == 2, out
    fault = RuntimeError("database exploded")
    strawberry.error(GraphQLError(str(fault), original_error=fault), exc_info=fault)
    assert "ERROR strawberry.execution" in stream.getvalue()


def test_a_request_failed_by_the_database_being_away_is_one_warning_line(restore_logging: None) -> None:
    import psycopg
    from graphql import GraphQLError

    stream = _setup()
    away = psycopg.OperationalError("connection failed: Connection refused\nIs the server running?")
    logging.getLogger("strawberry.execution").error(GraphQLError(str(away), original_error=away), exc_info=away)
    out = stream.getvalue()
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert "WARNING strawberry.execution: GraphQL request failed, the database did not answer: OperationalError" in out


def test_bad_log_settings_are_refused_with_the_choices(restore_logging: None) -> None:
    with pytest.raises(SystemExit, match="CAREWATCH_LOG_FORMAT must be text or json"):
        setup_logging(Settings(log_format="xml"))
    with pytest.raises(SystemExit, match="CAREWATCH_LOG_LEVEL must be one of DEBUG, INFO"):
        setup_logging(Settings(log_level="loud"))


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("carewatch.test.outage")
    outage = Outage(log, "Redis at 127.0.0.1:6379", retrying="retrying every second")
    with caplog.at_level(logging.INFO, logger="carewatch.test.outage"):
        outage.ok()  # nothing to say while all is well
        for _ in range(30):
            outage.failed(ConnectionError("Error 111 connecting to 127.0.0.1:6379.\nConnection refused."))
        outage.ok()
        outage.ok()
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert said[0] == ("Redis at 127.0.0.1:6379 unavailable (ConnectionError: Error 111 connecting to "
                       "127.0.0.1:6379.); retrying every second, and will say when it is back")
    assert said[1].startswith("Redis at 127.0.0.1:6379 available again after ") and "(30 failed attempts)" in said[1]
    assert all(r.exc_info is None for r in caplog.records)
