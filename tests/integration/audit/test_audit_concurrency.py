"""Replicas on one PostgreSQL: writers never wait for the chain, and concurrent writers and
sealers leave one total order that verifies."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from numident.audit.checkpoints import key_lookup
from numident.audit.log import audit_log
from numident.audit.sealer import lock_chain, seal
from numident.audit.verify import Verified, verify_chain
from numident.client.keys import generate_key
from numident.operator import audit
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

pytestmark = pytest.mark.postgres
START = datetime(2026, 11, 1, tzinfo=UTC)


def test_two_replicas_writing_and_sealing_at_once_leave_one_valid_chain(
        postgres_url: str) -> None:
    """Two writers, each on its own engine (as two gateway replicas), append 120 entries in
    transactions of two and seal every few transactions while the other writes: the chain
    holds all 240 entries once each, numbered 1..240, each writer's in the order it wrote."""
    setup = create_database_engine(postgres_url)
    upgrade(setup, "operator")
    chain = audit_log("operator")
    key = generate_key()
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def replica(name: str) -> None:
        engine = create_database_engine(postgres_url)
        try:
            start.wait(timeout=10)
            for n in range(60):
                with engine.begin() as conn:
                    audit.write(conn, [audit.entry(START + timedelta(seconds=n), name,
                                                   "answered", request_id=f"{name}-{n}-{i}")
                                       for i in range(2)])
                if n % 4 == 3:
                    seal(engine, chain, batch=5, key=key, now=START + timedelta(seconds=n),
                         interval=timedelta(seconds=10))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(name,)) for name in ("gw-a", "gw-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    result = verify_chain(setup, chain, key_lookup(key.public()))
    assert isinstance(result, Verified)
    assert (result.seq, result.unsealed) == (240, 0)
    assert result.checkpoints >= 2
    with setup.connect() as conn:
        rows = conn.execute(select(chain.table.c.seq, chain.table.c.actor,
                                   chain.table.c.request_id).order_by(chain.table.c.seq)).all()
    assert [r.seq for r in rows] == list(range(1, 241))
    for name in ("gw-a", "gw-b"):
        written = [r.request_id for r in rows if r.actor == name]
        assert written == [f"{name}-{n}-{i}" for n in range(60) for i in range(2)]
    setup.dispose()


def test_a_writer_commits_while_a_sealer_holds_the_chain_lock(postgres_url: str) -> None:
    """The lock is the sealers' alone: while one holds it, another sealer cannot take it, but
    an identification's audit entry commits at once, and the next sealer chains it."""
    engine = create_database_engine(postgres_url)
    upgrade(engine, "operator")
    chain = audit_log("operator")
    with engine.connect() as sealer, sealer.begin():
        lock_chain(sealer, chain)
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            audit.write(other, [audit.entry(START, "chat", "answered")])
        with engine.begin() as other:
            taken = other.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                 {"key": chain.lock_key})
        assert taken is False
    assert seal(engine, chain).seq == 1
    engine.dispose()
