"""Engines for the two supported stores: SQLite (embedded default) and PostgreSQL.

One code path serves both; the only differences live here: SQLite runs in WAL mode with a
busy timeout and foreign keys on, PostgreSQL uses psycopg 3. Nothing connects at import time.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from numident.errors import ConfigurationError, Conflict


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@contextmanager
def single_sqlite_server(url: str) -> Iterator[None]:
    """While a server runs on ``url``, refuse a second server process on the same SQLite file.

    SQLite lets one writer in at a time, so a second gateway or messenger process on one file
    adds no capacity: it only queues on the same lock and makes both slower. The server holds
    an exclusive ``flock`` on ``<file>.server-lock`` (released by the kernel however the
    process ends); a second one is refused with :class:`Conflict` naming the file and
    PostgreSQL, the store for several replicas. Other URLs pass through.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    database = Path(parsed.database).resolve()
    database.parent.mkdir(parents=True, exist_ok=True)
    with (database.parent / f"{database.name}.server-lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(f"another server already serves the SQLite database {database}: "
                           "one process per SQLite file (use PostgreSQL for replicas)",
                           code="DATABASE_IN_USE") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_database_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine for ``url`` (``sqlite:///FILE`` or ``postgresql+psycopg://...``)."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with an unhelpful text
        raise ConfigurationError(f"database_url {url!r} is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # Each connection would get a database of its own, lost when it closes.
            raise ConfigurationError(
                f"database_url {url!r} is an in-memory SQLite database: numident keeps its "
                "records in a file (sqlite:///PATH) or in PostgreSQL")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=pool_size, max_overflow=pool_size,
                             pool_pre_ping=True)
    raise ConfigurationError(
        f"database_url: unsupported database {backend!r} (sqlite or postgresql)")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is switched off so that "begin" below decides:
    # every transaction takes the write lock up front, which avoids SQLITE_BUSY upgrades
    # (deadlock-like failures) when two threads read and then write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A read-only transaction (see read_only) must not take the write lock: it may run while
    # the same thread holds a write transaction on another connection, and would wait for it.
    # Nor must one that writes only temporary tables (TEMP_ONLY): those live in the
    # connection's own temporary database, and taking the file's lock would block serving.
    options = connection.get_execution_options()
    if options.get(READ_ONLY) or options.get(TEMP_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "numident_read_only"
TEMP_ONLY = "numident_temp_only"
"""Execution option: this connection's transactions write only its temporary tables."""


@contextmanager
def read_only(engine: Engine) -> Iterator[Connection]:
    """A connection for reads that see one consistent snapshot and never wait for writers.

    SQLite (WAL) reads a snapshot without the write lock; PostgreSQL uses a read-only
    REPEATABLE READ transaction.
    """
    with engine.connect() as conn:
        options: dict[str, Any] = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.execution_options(**options).begin() as transaction:
            yield transaction.connection


_WRITE_LOCKS: WeakKeyDictionary[Engine, threading.Lock] = WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` for a hot write path, queued in-process on SQLite.

    SQLite has one writer at a time; threads that find the file locked poll it with growing
    sleeps, so under load most of a request's time is spent asleep while the lock is free.
    Here the writers of one process wait on a lock of the engine's instead, and are woken the
    moment the previous transaction ends. Other processes (and other write paths) still meet
    at the file lock. PostgreSQL needs none of this: its writers do not exclude each other.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.setdefault(engine, threading.Lock())
    with lock, engine.begin() as conn:
        yield conn


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"
