"""The sealer: gives unsealed entries their ``seq`` and ``hash``, a small batch at a time.

Writers insert entries unsealed and never wait for the chain. A sealer takes the chain's
lock (a transaction-scoped advisory lock on PostgreSQL, the write lock that every SQLite
transaction takes), reads the head, chains up to ``batch`` committed unsealed rows in the order
they were inserted, and commits; so replicas on one database keep one total order while the
lock is held only for one short batch. The server runs it in the background; ``verify`` and
``export`` run it first, so that everything committed is in the chain they read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    String,
    Table,
    Update,
    bindparam,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql

from numident.audit.chain import GENESIS, link
from numident.audit.checkpoints import sign_checkpoint
from numident.audit.log import AuditLog
from numident.client.keys import PrivateKey
from numident.core.clock import Clock
from numident.storage.database import write_transaction

log = structlog.get_logger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Head:
    """The last sealed entry (``seq`` 0 and :data:`GENESIS` for an empty chain)."""

    seq: int
    hash: str


def lock_chain(conn: Connection, chain: AuditLog) -> None:
    """Hold ``chain``'s sealing lock until ``conn``'s transaction ends."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": chain.lock_key})
    # SQLite: the transaction began with BEGIN IMMEDIATE and holds the database's write lock.


def head(conn: Connection, chain: AuditLog) -> Head:
    table = chain.table
    row = conn.execute(select(table.c.seq, table.c.hash).where(table.c.seq.is_not(None))
                       .order_by(table.c.seq.desc()).limit(1)).first()
    return Head(row.seq, row.hash) if row is not None else Head(0, GENESIS)


def seal_batch(conn: Connection, chain: AuditLog, batch: int = BATCH) -> tuple[int, Head]:
    """Chain up to ``batch`` unsealed rows after the head, in the caller's transaction (which
    must hold :func:`lock_chain`); returns how many were sealed and the new head."""
    table = chain.table
    tip = head(conn, chain)
    rows = conn.execute(select(table.c.id, *(table.c[name] for name in chain.content))
                        .where(table.c.seq.is_(None)).order_by(table.c.id)
                        .limit(batch)).all()
    seq, prev = tip.seq, tip.hash
    ids, hashes = [], []
    for row_id, *content in rows:
        seq += 1
        prev = link(seq, prev, chain.entry_of(content))
        ids.append(row_id)
        hashes.append(prev)
    if ids:
        _write_links(conn, table, ids, range(tip.seq + 1, seq + 1), hashes)
    return len(rows), Head(seq, prev)


def _write_links(conn: Connection, table: Table, ids: Sequence[int], seqs: Sequence[int],
                 hashes: Sequence[str]) -> None:
    if conn.dialect.name == "postgresql":
        # One statement with an array per column: psycopg would send an executemany as a
        # statement per row and read each one's result in Python.
        statement = _POSTGRESQL_LINKS.get(table)
        if statement is None:
            statement = _POSTGRESQL_LINKS[table] = _postgresql_links(table)
        conn.execute(statement, {"ids": list(ids), "seqs": list(seqs), "hashes": list(hashes)})
        return
    conn.execute(update(table).where(table.c.id == bindparam("row_id"))
                 .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")),
                 [{"row_id": i, "new_seq": n, "new_hash": h}
                  for i, n, h in zip(ids, seqs, hashes, strict=True)])


def _postgresql_links(table: Table) -> Update:
    links = func.unnest(bindparam("ids", type_=postgresql.ARRAY(BigInteger)),
                        bindparam("seqs", type_=postgresql.ARRAY(BigInteger)),
                        bindparam("hashes", type_=postgresql.ARRAY(String))
                        ).table_valued("id", "seq", "hash").render_derived(name="links")
    return update(table).where(table.c.id == links.c.id).values(seq=links.c.seq,
                                                                 hash=links.c.hash)


_POSTGRESQL_LINKS: dict[Table, Update] = {}


def checkpoint_if_due(conn: Connection, chain: AuditLog, key: PrivateKey, now: datetime,
                      interval: timedelta | None) -> int | None:
    """Sign the head when it moved past the last checkpoint and ``interval`` has passed since
    that one (``None``: at once); in the caller's transaction, under :func:`lock_chain`.
    Returns the ``seq`` signed, or None."""
    checkpoints = chain.checkpoints
    last = conn.execute(select(checkpoints.c.seq, checkpoints.c.signed_at)
                        .order_by(checkpoints.c.seq.desc()).limit(1)).first()
    tip = head(conn, chain)
    if tip.seq == 0 or (last is not None and last.seq >= tip.seq):
        return None
    if last is not None and interval is not None and now - last.signed_at < interval:
        return None
    conn.execute(checkpoints.insert().values(
        seq=tip.seq, hash=tip.hash, signed_at=now, kid=key.kid,
        jws=sign_checkpoint(key, chain.name, tip.seq, tip.hash, now)))
    return tip.seq


def seal(engine: Engine, chain: AuditLog, *, batch: int = BATCH, key: PrivateKey | None = None,
         now: datetime | None = None, interval: timedelta | None = None) -> Head:
    """Seal every committed unsealed entry, one short transaction per ``batch``; with ``key``
    and ``now``, then sign a checkpoint when one is due (see :func:`checkpoint_if_due`)."""
    while True:
        with write_transaction(engine) as conn:
            lock_chain(conn, chain)
            count, tip = seal_batch(conn, chain, batch)
            if count == batch:
                continue
            if key is not None and now is not None:
                checkpoint_if_due(conn, chain, key, now, interval)
            return tip


async def run_sealer(engine: Engine, chains: Sequence[AuditLog], key: PrivateKey,
                     clock: Clock, stop: asyncio.Event, *, seal_seconds: float,
                     checkpoint_seconds: float, batch: int = BATCH) -> None:
    """Seal each of ``chains`` every ``seal_seconds`` and sign its head every
    ``checkpoint_seconds`` until ``stop``; a chain's failed round is logged and tried again
    at the next one, and does not hold up the other chains."""
    interval = timedelta(seconds=checkpoint_seconds)
    while not stop.is_set():
        for chain in chains:
            try:
                await asyncio.to_thread(seal, engine, chain, batch=batch, key=key,
                                        now=clock.now(), interval=interval)
            except Exception:  # one background round: the next one tries again
                log.exception("audit_seal_failed", side=chain.side, log=chain.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seal_seconds)
