"""Log configuration: the standard library's records and structlog's through one formatter."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest
import structlog

from numident.logs import configure_logging


@pytest.fixture
def configured() -> Iterator[None]:
    """Leave logging as the test found it (configure_logging changes process-wide state)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    logging.captureWarnings(False)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_lines_from_stdlib_structlog_warnings_and_exceptions(configured: None) -> None:
    """A library's %-formatted record with extras, a structlog event bound to a request, a
    Python warning and an exception: each one line of JSON with level, logger and time."""
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42,
                                            extra={"color_message": "\x1b[32m42\x1b[0m"})
    logging.getLogger("sqlalchemy.engine").debug("below the level: not written")
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        structlog.get_logger("numident.test").warning("refused", reason="INVALID_TOKEN")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("numident.outbox").exception("sender failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]

    assert len(lines) == 4
    started, refused, warned, failed = lines
    assert started["event"] == "Started server process [42]"
    assert (started["level"], started["logger"]) == ("info", "uvicorn.error")
    assert "color_message" not in started
    assert started["timestamp"].endswith("Z")
    assert refused == {**refused, "event": "refused", "reason": "INVALID_TOKEN",
                       "request_id": "r-1", "level": "warning", "logger": "numident.test"}
    assert warned["logger"] == "py.warnings"
    assert "old API" in warned["event"]
    assert failed["level"] == "error"
    assert "ValueError: boom" in failed["exception"]


def test_console_lines_are_readable_text(configured: None) -> None:
    """The console format is one readable line per event, key=value pairs, no JSON."""
    out = io.StringIO()
    configure_logging("INFO", "console", stream=out)
    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "0006",
                                                        "0007")
    structlog.get_logger("numident.access").info("request", status=200, route="/healthz")
    first, second = out.getvalue().splitlines()
    assert "[info     ] Running upgrade 0006 -> 0007" in first
    assert "alembic.runtime.migration" in first
    assert "request" in second
    assert "route=/healthz" in second
    assert "status=200" in second
    assert not first.startswith("{")


def test_the_http_clients_line_per_request_is_written_at_debug_only(configured: None) -> None:
    """The client's 'HTTP Request: ...' line for every call is left out at INFO (its warnings
    are not) and written again at DEBUG."""
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.getLogger("httpx2").info("HTTP Request: POST http://127.0.0.1/x 200")
    logging.getLogger("httpcore2.connection").warning("connection lost")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == [
        "connection lost"]
    configure_logging("DEBUG", "json", stream=out)
    logging.getLogger("httpx2").info("HTTP Request: POST http://127.0.0.1/y 200")
    assert json.loads(out.getvalue().splitlines()[-1])["event"] == (
        "HTTP Request: POST http://127.0.0.1/y 200")
