"""A loaded registry, a gateway process serving it, and the export files the scenarios import."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import SystemClock
from numident.operator import organizers, registry
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.tables import outbox, subscriber_history, subscribers, usages
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

HEADER = "phone_number,contract_id,status,activated_at\n"
ORGANIZER = "chat"


def number(n: int) -> str:
    return f"+7916{n:07d}"


def write_registry(path: Path, count: int) -> None:
    """``count`` active lines, contract ``C-n``."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        out.writelines(f"{number(n)},C-{n},active,2020-01-01\n" for n in range(count))


def write_delta(path: Path, count: int, new: int = 0) -> None:
    """The first ``count`` lines, each changed (even ones ended, odd ones given a new
    contract), then ``new`` lines the registry does not hold yet."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        out.writelines(f"{number(n)},C-{n},terminated,2020-01-01\n" if n % 2 == 0 else
                       f"{number(n)},C-{n}-new,active,2026-11-01\n" for n in range(count))
        out.writelines(f"{number(n)},C-{n},active,2026-11-01\n"
                       for n in range(count, count + new))


@dataclass(frozen=True)
class Snapshot:
    """What an import may change: every registry row, and the history and outbox sizes."""

    rows: frozenset[tuple[str, str, str]]
    history: int
    notices: int
    invalidated: int


def snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        rows = frozenset((r.phone_number, r.contract_id, r.status) for r in conn.execute(
            select(subscribers.c.phone_number, subscribers.c.contract_id, subscribers.c.status)))

        def count(table: object, *where: object) -> int:
            query = select(func.count()).select_from(table)  # type: ignore[arg-type]
            return int(conn.execute(query.where(*where)).scalar_one())  # type: ignore[arg-type]

        return Snapshot(rows, count(subscriber_history), count(outbox),
                        count(usages, usages.c.status == "invalidated"))


@dataclass
class Installation:
    """A gateway's home and database, with an organizer registered and the registry loaded."""

    home: Path
    database_url: str
    engine: Engine
    key: PrivateKey

    def env(self, **extra: str) -> dict[str, str]:
        return {"NUMIDENT_HOME": str(self.home), "NUMIDENT_DATABASE_URL": self.database_url,
                "NUMIDENT_LOG_LEVEL": "WARNING", **extra}


@contextmanager
def installation(tmp_path: Path, database_url: str, lines: int) -> Iterator[Installation]:
    home = tmp_path / "home"
    engine = create_database_engine(database_url)
    try:
        upgrade(engine, "operator")
        export = tmp_path / "registry.csv"
        write_registry(export, lines)
        registry.import_subscribers(engine, export, now=datetime.now(UTC),
                                    notice_source="http://127.0.0.1",
                                    handlers=lifecycle_handlers())
        key = generate_key()
        organizers.add_organizer(engine, ORGANIZER, "http://127.0.0.1:9/notices",
                                 json.dumps(key.public_jwk()), SystemClock().now())
        yield Installation(home, database_url, engine, key)
    finally:
        engine.dispose()


def child_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}
