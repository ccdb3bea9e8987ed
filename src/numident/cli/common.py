"""What every command shares: the ``--config`` option, settings, the database, and errors as
exit codes.

Exit codes (SPEC): 0 success, 1 the operation failed or was refused, 2 bad usage, bad input, a bad
configuration, or a database whose schema is not the newest (``numident SIDE migrate`` brings it
there; servers migrate at start).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine

from numident.config import Settings, load_settings
from numident.errors import ConfigurationError, InvalidFile, InvalidInput, NumidentError
from numident.storage.database import create_database_engine, single_sqlite_server
from numident.storage.migrate import Side, revisions, upgrade

P = ParamSpec("P")
R = TypeVar("R")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (NUMIDENT_* variables override it)",
                 exists=False, dir_okay=False),
]

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def settings(config: Path | None, **overrides: Any) -> Settings:
    return load_settings(config, **overrides)


@contextmanager
def _engine(config: Settings, side: Side) -> Iterator[Engine]:
    engine = create_database_engine(config.database_url_for(side),
                                    pool_size=config.database_pool_size)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def database(config: Settings, side: Side) -> Iterator[Engine]:
    """The side's database, closed when the command is done; refused (exit 2) unless its schema
    is the newest: only ``migrate`` and the servers change the schema."""
    with _engine(config, side) as engine:
        current, newest = revisions(engine, side)
        if current != newest:
            raise InvalidInput(f"the {side}'s database schema is {_revision(current)}, not the "
                               f"newest ({_revision(newest)}); run: numident {side} migrate")
        yield engine


def migrate_schema(config: Settings, side: Side) -> None:
    """Bring the side's database to the newest schema and say from which revision (idempotent)."""
    with _engine(config, side) as engine:
        before, newest = revisions(engine, side)
        upgrade(engine, side)
    if before == newest:
        console.print(f"{side} schema is up to date: {_revision(newest)}", highlight=False)
    else:
        console.print(f"{side} schema migrated: {_revision(before)} → {_revision(newest)}",
                      highlight=False)


def _revision(revision: str | None) -> str:
    return revision or "empty"


def serve_forever(create_app: Callable[[Settings], Any], config: Path | None, host: str,
                  port: int, side: Side) -> None:
    """Run an application under uvicorn with numident's structured logs and the side's HTTP
    bounds (``[operator.http]`` or ``[messenger.http]``)."""
    import uvicorn

    from numident.logs import configure_logging
    from numident.web.server import ensure_port_free, uvicorn_options

    loaded = settings(config)
    ensure_port_free(host, port)
    configure_logging(loaded.log_level, loaded.log_format)
    http = loaded.operator.http if side == "operator" else loaded.messenger.http
    with single_sqlite_server(loaded.database_url_for(side)):
        uvicorn.run(create_app(loaded), host=host, port=port, log_config=None,
                    access_log=False, timeout_graceful_shutdown=5, **uvicorn_options(http))


def _error(message: str) -> None:
    """``error: MESSAGE`` on standard error, the prefix in red on a terminal; the message is
    printed as it is (a path or a value may hold brackets that are not markup)."""
    errors.print(f"[red]error:[/] {escape(message)}", highlight=False)


def exits(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn numident errors into a clear message and the exit code SPEC assigns."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except InvalidFile as exc:
            _error(f"{exc.message.split(':', 1)[0]}: rejected, nothing was changed")
            for problem in exc.problems[:50]:
                errors.print(f"  {problem}", highlight=False, markup=False)
            if exc.total > 50:
                errors.print(f"  ... and {exc.total - 50} more", highlight=False)
            sys.exit(2)
        except (InvalidInput, ConfigurationError) as exc:
            _error(exc.message)
            sys.exit(2)
        except NumidentError as exc:
            _error(f"{exc.message} ({exc.code})")
            sys.exit(1)

    return wrapper


def _bars() -> Progress:
    """Rich progress bars on stderr, shown only when it is a terminal."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=errors, transient=False,
                    disable=not errors.is_terminal)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar for long work; yields ``advance(rows)``."""
    with _bars() as bar:
        task = bar.add_task(description, total=total)
        yield lambda rows: bar.advance(task, rows)


class OperatorBars:
    """One rich progress bar per operator, made when its first accounts are added (the
    ``Progress`` of a bulk identification run)."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}

    def add(self, inn: str, name: str, accounts: int, answered: int) -> None:
        self._totals[inn] = total = self._totals.get(inn, 0) + accounts
        if inn not in self._tasks:
            self._tasks[inn] = self._bar.add_task(name, total=total, completed=answered)
        else:
            self._bar.update(self._tasks[inn], total=total, advance=answered)

    def advance(self, inn: str, accounts: int) -> None:
        self._bar.advance(self._tasks[inn], accounts)


@contextmanager
def operator_progress() -> Iterator[OperatorBars]:
    """The bars of a bulk identification, on stderr when it is a terminal."""
    with _bars() as bar:
        yield OperatorBars(bar)


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
                   - 1, 0)
