"""What benchmark runs share: a scratch database (PostgreSQL ones are dropped afterwards) and a
free loopback port."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

POSTGRES_ADMIN_URL = os.environ.get(
    "NUMIDENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_database(prefix: str) -> Iterator[str]:
    """Yield the URL of a new database named ``{prefix}_<hex>``; drop it when done."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_database(kind: str, sqlite_file: Path, prefix: str) -> Iterator[str]:
    """The URL of an empty database: ``sqlite_file`` (kind ``sqlite``) or a new PostgreSQL
    database named ``{prefix}_<hex>``, dropped when done."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_file}"
        return
    yield from postgres_database(prefix)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fill_subscribers(engine: Engine, count: int, *, activated: datetime, now: datetime) -> None:
    """``count`` active subscribers ``+7916NNNNNNN`` (from 0) in one transaction, 20k rows a
    statement, into a registry at the newest schema."""
    from numident.operator.tables import subscribers

    with engine.begin() as conn:
        for start in range(0, count, 20_000):
            conn.execute(subscribers.insert(), [
                {"phone_number": f"+7916{i:07d}", "contract_id": f"C-{i}", "status": "active",
                 "activated_at": activated, "updated_at": now}
                for i in range(start, min(count, start + 20_000))])
