"""What the audit tests share: databases with entries written the way the code writes them,
and the attacker's tools (drop the append-only triggers, then edit rows with plain SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from numident.audit.log import AuditLog, Side, audit_log
from numident.audit.sealer import seal
from numident.client.keys import PrivateKey, generate_key
from numident.core.accounts import AccountState
from numident.messenger import admission
from numident.messenger.accounts import AccountStore
from numident.operator import audit
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def write_operator_entries(engine: Engine, count: int, start: datetime = START,
                           step: timedelta = timedelta(minutes=1)) -> None:
    """``count`` entries through ``audit.write``, two per transaction, as identification does."""
    for first in range(0, count, 2):
        with engine.begin() as conn:
            audit.write(conn, [audit.entry(start + step * n, "chat", "answered",
                                           phone_number=f"+7916000{n:04d}",
                                           request_id=f"r-{n}", detail={"result": "confirmed",
                                                                        "n": n})
                               for n in range(first, min(first + 2, count))])


def write_account_entries(engine: Engine, count: int, account_id: str = "u1") -> None:
    """``count`` account audit entries through ``AccountStore``: created, then a number
    given, then changes noted."""
    store = AccountStore(None, None)
    with engine.begin() as conn:
        account = store.create(conn, account_id, START)
        for n in range(1, count):
            at = START + timedelta(minutes=n)
            account = (store.move(conn, account, AccountState.VERIFYING_POSSESSION, at,
                                  phone_number="+79161234567") if n == 1 else
                       store.touch(conn, account, at, detail={"n": n}))


def write_possession_entries(engine: Engine, count: int, start: datetime = START) -> None:
    """``count`` possession audit entries through ``admission.audit``: codes sent, then a
    refusal every third entry, one per transaction, as the code requests write them."""
    for n in range(count):
        with engine.begin() as conn:
            admission.audit(conn, start + timedelta(minutes=n), f"u{n}", f"+7916100{n:04d}",
                            "refused" if n % 3 == 2 else "sent", client_address="127.0.0.1",
                            channel="sms", reason="number_budget" if n % 3 == 2 else None,
                            detail={"n": n})


def write_entries(side: Side, engine: Engine, count: int, account_id: str = "u1") -> None:
    if side == "operator":
        write_operator_entries(engine, count)
    else:
        write_account_entries(engine, count, account_id)


@pytest.fixture
def key() -> PrivateKey:
    return generate_key()


@pytest.fixture
def engine_for(database_url: str) -> Iterator[object]:
    """``engine_for(side)``: the test's database migrated to ``side``'s newest schema."""
    engines: list[Engine] = []

    def make(side: Side) -> Engine:
        engine = create_database_engine(database_url)
        upgrade(engine, side)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def checkpoint(engine: Engine, chain: AuditLog, key: PrivateKey,
               now: datetime = START + timedelta(days=1)) -> None:
    """Seal and sign the head now, whatever the interval."""
    seal(engine, chain, key=key, now=now, interval=None)


def drop_triggers(conn: Connection, table: str) -> None:
    """What someone holding the database does first: remove the append-only guard (and the
    unique index of ``seq``, to be free to insert)."""
    if conn.dialect.name == "postgresql":
        for trigger in (f"{table}_append_only", f"{table}_sealed_once"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger} ON {table}"))
    else:
        for trigger in (f"{table}_no_update", f"{table}_no_delete", f"{table}_sealed_once"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    conn.execute(text(f"DROP INDEX IF EXISTS ix_{table}_seq"))


__all__ = ["audit_log", "checkpoint", "drop_triggers", "engine_for", "key", "write_entries",
           "write_possession_entries"]
