"""Each side's audit chain in a real database: sealed in order, and every edit made behind
the code's back (triggers dropped, rows changed with SQL) is named by ``verify``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from audit_fixtures import (
    checkpoint,
    drop_triggers,
    write_entries,
    write_operator_entries,
    write_possession_entries,
)
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DatabaseError

from numident.audit.chain import GENESIS, link
from numident.audit.checkpoints import key_lookup, read, sign_checkpoint
from numident.audit.log import AuditLog, Side, audit_log, audit_logs
from numident.audit.sealer import run_sealer, seal
from numident.audit.verify import Broken, Verified, verify_chain
from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import FakeClock
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

SIDES: list[Side] = ["operator", "messenger"]
CHAINS = ["operator", "messenger", "messenger-possession"]
"""Every chain by name: the gateway's, the messenger's account and possession trails."""
EngineFor = Callable[[Side], Engine]


def _chain(name: str) -> AuditLog:
    return next(c for c in (*audit_logs("operator"), *audit_logs("messenger"))
                if c.name == name)


def _engine(engine_for: EngineFor, name: str) -> Engine:
    return engine_for(_chain(name).side)


def _write(name: str, engine: Engine, count: int, account_id: str = "u1") -> None:
    """``count`` entries of chain ``name``, written the way the code writes them."""
    if name == "messenger-possession":
        write_possession_entries(engine, count)
    else:
        write_entries(_chain(name).side, engine, count, account_id)


@pytest.mark.parametrize("name", CHAINS)
def test_entries_are_chained_in_the_order_they_were_written(name: str, engine_for: EngineFor,
                                                           key: PrivateKey) -> None:
    """Writers leave entries unsealed; the sealer numbers them 1..n in insertion order with
    the hashes the chain's rule gives, and verify finds the chain intact."""
    engine = _engine(engine_for, name)
    chain = _chain(name)
    _write(name, engine, 7)
    with engine.connect() as conn:
        assert conn.execute(select(chain.table.c.seq).where(chain.table.c.seq.is_not(None))
                            ).all() == []
    head = seal(engine, chain, batch=3)
    with engine.connect() as conn:
        rows = conn.execute(select(chain.table).order_by(chain.table.c.id)).mappings().all()
    prev = GENESIS
    for number, row in enumerate(rows, start=1):
        prev = link(number, prev, chain.entry(row))
        assert (row["seq"], row["hash"]) == (number, prev)
    assert (head.seq, head.hash) == (7, prev)
    result = verify_chain(engine, chain, key_lookup(key.public()))
    assert result == Verified(seq=7, checkpoint=None, checkpoints=0, unsealed=0)


@pytest.mark.parametrize("name", CHAINS)
def test_triggers_let_only_the_sealer_set_seq_and_hash_once(name: str,
                                                           engine_for: EngineFor) -> None:
    """Content cannot be updated or deleted, nor a sealed entry resealed, through SQL."""
    engine = _engine(engine_for, name)
    chain = _chain(name)
    _write(name, engine, 2)
    table = chain.table.name
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET at = at WHERE id = 1"))
    seal(engine, chain)
    for statement in (f"UPDATE {table} SET hash = 'x' WHERE id = 1",
                      f"UPDATE {table} SET seq = NULL WHERE id = 1",
                      f"DELETE FROM {table} WHERE id = 2"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert isinstance(verify_chain(engine, chain, key_lookup()), Verified)


CHANGED = {"audit": "actor", "account_audit": "to_state", "possession_audit": "event"}
"""The column that ``_change`` rewrites in each table."""
COLUMNS = {  # what ``_insert`` copies
    "audit": "at, actor, action, phone_number, identification_code, request_id, detail",
    "account_audit": "account_id, at, from_state, to_state, reason, phone_number, detail",
    "possession_audit": "at, account_id, phone_number, client_address, channel, event, "
                        "reason, detail",
}


def _change(conn: Connection, table: str, seq: int = 3) -> None:
    conn.execute(text(f"UPDATE {table} SET {CHANGED[table]} = 'identified' WHERE seq = {seq}"))


def _remove(conn: Connection, table: str) -> None:
    conn.execute(text(f"DELETE FROM {table} WHERE seq = 3"))


def _insert(conn: Connection, table: str) -> None:
    """A row copied in under a number the chain already gave, with the hash it carries."""
    columns = f"{COLUMNS[table]}, seq, hash"
    conn.execute(text(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table} "
                      "WHERE seq = 3"))


def _reorder(conn: Connection, table: str) -> None:
    """Entries 2 and 3 swap places, each keeping its stored hash."""
    conn.execute(text(f"UPDATE {table} SET seq = -2 WHERE seq = 2"))
    conn.execute(text(f"UPDATE {table} SET seq = 2 WHERE seq = 3"))
    conn.execute(text(f"UPDATE {table} SET seq = 3 WHERE seq = -2"))


def _truncate(conn: Connection, table: str) -> None:
    conn.execute(text(f"DELETE FROM {table} WHERE seq > 4"))


TAMPERING = {  # what is done, the entry named, how, entries verified before, the words
    "changed row": (_change, 3, "changed", 2, "entry 3 (id 3"),
    "removed row": (_remove, 3, "removed", 2, "entry 3 is missing"),
    "inserted row": (_insert, 3, "inserted", 3, "entry 3 (id 7"),
    "reordered rows": (_reorder, 2, "changed", 1, "entry 2 (id 3"),
    "removed last rows": (_truncate, 5, "removed", 4,
                          "checkpoint stored at entry 6 signs entry 6"),
}


@pytest.mark.parametrize("name", CHAINS)
@pytest.mark.parametrize("scenario", sorted(TAMPERING))
def test_verify_names_the_first_entry_tampered_with_behind_the_triggers(
        name: str, scenario: str, engine_for: EngineFor, key: PrivateKey) -> None:
    """With the triggers dropped, a row is changed, removed, inserted or moved with SQL:
    verify stops at that entry, names it, and reports what it verified before it."""
    engine = _engine(engine_for, name)
    chain = _chain(name)
    _write(name, engine, 6)
    checkpoint(engine, chain, key)
    tamper, seq, kind, verified, words = TAMPERING[scenario]
    with engine.begin() as conn:
        drop_triggers(conn, chain.table.name)
        tamper(conn, chain.table.name)
    result = verify_chain(engine, chain, key_lookup(key.public()))
    assert isinstance(result, Broken), result
    assert (result.problem.seq, result.problem.kind, result.verified) == (seq, kind, verified)
    assert words in result.problem.message


@pytest.mark.parametrize("name", CHAINS)
def test_a_chain_rehashed_after_an_edit_fails_at_its_checkpoint(
        name: str, engine_for: EngineFor, key: PrivateKey) -> None:
    """Whoever knows the rule can recompute every hash after changing an entry; the head
    the key signed before shows it, and the report says the last checkpoint that held."""
    engine = _engine(engine_for, name)
    chain = _chain(name)
    _write(name, engine, 3)
    checkpoint(engine, chain, key, datetime(2026, 11, 2, tzinfo=UTC))
    _write(name, engine, 3, account_id="u2")
    checkpoint(engine, chain, key, datetime(2026, 11, 3, tzinfo=UTC))
    with engine.begin() as conn:
        drop_triggers(conn, chain.table.name)
        _change(conn, chain.table.name, seq=5)
        rows = conn.execute(select(chain.table).order_by(chain.table.c.seq)).mappings().all()
        prev = GENESIS
        for row in rows:
            prev = link(row["seq"], prev, chain.entry(row))
            conn.execute(chain.table.update().where(chain.table.c.id == row["id"])
                         .values(hash=prev))
    result = verify_chain(engine, chain, key_lookup(key.public()))
    assert isinstance(result, Broken)
    assert (result.problem.seq, result.problem.kind) == (6, "checkpoint")
    assert result.checkpoint is not None
    assert result.checkpoint.seq == 3
    assert "changed, removed, inserted or reordered" in result.problem.message


@pytest.mark.parametrize("name", CHAINS)
def test_a_forged_checkpoint_is_named(name: str, engine_for: EngineFor,
                                      key: PrivateKey) -> None:
    """A checkpoint replaced by one signed with another key does not count."""
    engine = _engine(engine_for, name)
    chain = _chain(name)
    _write(name, engine, 4)
    checkpoint(engine, chain, key)
    table = chain.checkpoints.name
    forged = sign_checkpoint(generate_key(), name, 4, "00" * 32, datetime.now(UTC))
    with engine.begin() as conn:
        drop_triggers(conn, table)
        conn.execute(text(f"UPDATE {table} SET jws = :jws WHERE seq = 4"), {"jws": forged})
    result = verify_chain(engine, chain, key_lookup(key.public()))
    assert isinstance(result, Broken)
    assert (result.problem.seq, result.problem.kind) == (4, "checkpoint")
    assert "not the key given: forged or altered" in result.problem.message


def test_checkpoints_are_signed_at_the_configured_interval(engine_for: EngineFor,
                                                          key: PrivateKey) -> None:
    """A new checkpoint only when the head moved and the interval passed since the last."""
    from datetime import timedelta

    engine = engine_for("operator")
    chain = audit_log("operator")
    hour = timedelta(hours=1)
    t0 = datetime(2026, 11, 5, tzinfo=UTC)
    write_operator_entries(engine, 2)
    seal(engine, chain, key=key, now=t0, interval=hour)
    write_operator_entries(engine, 2)
    seal(engine, chain, key=key, now=t0 + hour / 2, interval=hour)  # too soon
    seal(engine, chain, key=key, now=t0 + hour, interval=hour)
    seal(engine, chain, key=key, now=t0 + 3 * hour, interval=hour)  # nothing new
    with engine.connect() as conn:
        signed = conn.execute(select(chain.checkpoints.c.seq, chain.checkpoints.c.signed_at)
                              .order_by(chain.checkpoints.c.seq)).all()
    assert [tuple(r) for r in signed] == [(2, t0), (4, t0 + hour)]
    result = verify_chain(engine, chain, key_lookup(key.public()))
    assert isinstance(result, Verified)
    assert result.checkpoints == 2
    assert result.checkpoint is not None
    assert result.checkpoint.seq == 4


@pytest.mark.parametrize("side", SIDES)
def test_the_migration_chains_the_entries_already_written(side: Side, database_url: str,
                                                         key: PrivateKey) -> None:
    """A database from before the chain gets every old entry chained, in id order."""
    engine = create_database_engine(database_url)
    upgrade(engine, side, "0013" if side == "operator" else "0007")
    table = "audit" if side == "operator" else "account_audit"
    values = ("(:at, 'chat', 'answered', '+79160000001', NULL, 'r', '{\"n\": 1}')"
              if side == "operator" else
              "('u1', :at, NULL, 'unidentified', NULL, NULL, '{\"n\": 1}')")
    columns = ("at, actor, action, phone_number, identification_code, request_id, detail"
               if side == "operator" else
               "account_id, at, from_state, to_state, reason, phone_number, detail")
    with engine.begin() as conn:
        for minute in range(5):
            conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES {values}"),
                         {"at": datetime(2026, 1, 1, 0, minute, tzinfo=UTC)})
    upgrade(engine, side)
    chain = audit_log(side)
    with engine.connect() as conn:
        assert conn.execute(select(chain.table.c.id, chain.table.c.seq)
                            .order_by(chain.table.c.id)).all() == [(n, n) for n in range(1, 6)]
    assert verify_chain(engine, chain, key_lookup(key.public()), seal_first=False) == \
        Verified(seq=5, checkpoint=None, checkpoints=0, unsealed=0)
    engine.dispose()


def test_the_migration_chains_the_possession_entries_already_written(
        database_url: str, key: PrivateKey) -> None:
    """Revision 0008 chains the possession trail written before it, in id order, and keeps
    it append-only."""
    engine = create_database_engine(database_url)
    upgrade(engine, "messenger", "0006")
    with engine.begin() as conn:
        for minute in range(4):
            conn.execute(text("INSERT INTO possession_audit (at, account_id, phone_number, "
                              "event, detail) VALUES (:at, 'u1', '+79160000001', 'sent', "
                              "'{\"n\": 1}')"),
                         {"at": datetime(2026, 1, 1, 0, minute, tzinfo=UTC)})
    upgrade(engine, "messenger")
    chain = _chain("messenger-possession")
    with engine.connect() as conn:
        assert conn.execute(select(chain.table.c.id, chain.table.c.seq)
                            .order_by(chain.table.c.id)).all() == [(n, n) for n in range(1, 5)]
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE possession_audit SET event = 'refused' WHERE id = 1"))
    assert verify_chain(engine, chain, key_lookup(key.public()), seal_first=False) == \
        Verified(seq=4, checkpoint=None, checkpoints=0, unsealed=0)
    engine.dispose()


def test_the_background_sealer_seals_and_signs_both_messenger_chains(
        engine_for: EngineFor, key: PrivateKey) -> None:
    """The messenger server's one sealer takes the account chain and the possession chain
    in turn: one round chains both and signs a checkpoint of each under its own name."""
    engine = engine_for("messenger")
    write_entries("messenger", engine, 2)
    write_possession_entries(engine, 3)
    chains = audit_logs("messenger")

    async def one_round() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_sealer(engine, chains, key, FakeClock(), stop,
                                              seal_seconds=30, checkpoint_seconds=3600))
        for _ in range(500):  # the first round runs at once; give it up to 5 seconds
            with engine.connect() as conn:
                if all(conn.scalar(select(func.count()).select_from(c.checkpoints))
                       for c in chains):
                    break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(one_round())
    for chain, entries in zip(chains, (2, 3), strict=True):
        result = verify_chain(engine, chain, key_lookup(key.public()), seal_first=False)
        assert isinstance(result, Verified), result
        assert (result.seq, result.checkpoints, result.unsealed) == (entries, 1, 0)
        with engine.connect() as conn:
            token = conn.scalar(select(chain.checkpoints.c.jws))
        assert read(token, key_lookup(key.public()), chain.name)[1]["seq"] == entries
