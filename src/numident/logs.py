"""Structured logs: one JSON object per line in production, readable lines at a console.

structlog renders every record, its own and those of the standard library's loggers alike
(uvicorn, alembic, httpx2, sqlalchemy, asyncio, warnings): the root logger's one handler
formats with structlog's :class:`~structlog.stdlib.ProcessorFormatter`, so a JSON log has no
line that is not JSON. Each line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``
and ``event``; the keyword arguments of a structlog call and the ``extra`` of a standard
library call become fields of their own. Values bound with
``structlog.contextvars.bind_contextvars`` (the request id while a request is served) join
every line logged in that context.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "sqlalchemy",
                   "httpx2", "httpcore2", "asyncio", "nats")
"""Loggers that libraries may have given handlers of their own: they go through the root's."""

PER_REQUEST_LOGGERS = ("httpx2", "httpcore2")
"""The HTTP client's line for every request it sends (a gateway call, a notice) says only
what the caller logs better: below DEBUG they log warnings only."""


def _drop_color_message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # uvicorn passes a second, ANSI-coloured copy of some messages as an extra.
    event.pop("color_message", None)
    return event


def configure_logging(level: str = "INFO", fmt: str = "console",
                      stream: TextIO | None = None) -> None:
    """Route every logger, structlog's and the standard library's, to one handler on
    ``stream`` (standard error), rendered as JSON lines (``fmt="json"``) or for a console."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json" else [structlog.dev.ConsoleRenderer(colors=False)])
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    quiet = root.getEffectiveLevel() > logging.DEBUG
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*shared, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
