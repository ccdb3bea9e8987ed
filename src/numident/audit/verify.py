"""Walk a database's chain from its first entry, checking every hash and every checkpoint.

Memory stays flat: entries and checkpoints are streamed in ``seq`` order side by side from
one snapshot, and only the last hash is held. The walk trusts nothing stored but the key: the
``hash`` column is compared with the hash computed from the row's content and the previous
computed hash, and a checkpoint counts only when its signature verifies, so edits made with
the append-only triggers dropped are found as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from numident.audit.chain import Break, Walk
from numident.audit.checkpoints import InvalidCheckpoint, KeyLookup, read
from numident.audit.log import AuditLog
from numident.audit.sealer import seal
from numident.storage.database import read_only

STREAM = 1000


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint whose signature verified and whose hash matched the walk."""

    seq: int
    signed_at: str
    kid: str
    jws: str


@dataclass(frozen=True)
class Verified:
    """The chain holds: entries 1..``seq`` match, and so does every one of ``checkpoints``
    signed heads, the last being ``checkpoint`` (None when none is signed yet). ``unsealed``
    entries were still being written (not yet committed when the sealer ran)."""

    seq: int
    checkpoint: Checkpoint | None
    checkpoints: int
    unsealed: int


@dataclass(frozen=True)
class Broken:
    """The first break, after entries 1..``verified`` were found intact."""

    problem: Break
    verified: int
    checkpoint: Checkpoint | None


Visitor = Callable[[Walk, Checkpoint | None], None]
"""Called after each verified entry, with the checkpoint that signs it, if any."""


def verify_chain(engine: Engine, chain: AuditLog, keys: KeyLookup, *,
                 seal_first: bool = True) -> Verified | Broken:
    """Seal what is committed (unless ``seal_first`` is false), then walk the chain."""
    if seal_first:
        seal(engine, chain)
    with read_only(engine) as conn:
        return walk_chain(conn, chain, keys)


def walk_chain(conn: Connection, chain: AuditLog, keys: KeyLookup,
               visit: Visitor | None = None) -> Verified | Broken:
    """Walk ``chain`` in ``conn``'s snapshot, calling ``visit`` for every verified entry."""
    table, stored = chain.table, chain.checkpoints
    streaming = conn.execution_options(stream_results=True, yield_per=STREAM)
    with streaming.execute(select(table).where(table.c.seq.is_not(None))
                           .order_by(table.c.seq, table.c.id)) as entries, \
            streaming.execute(select(stored.c.seq, stored.c.jws)
                              .order_by(stored.c.seq)) as checkpoints:
        result = _walk(entries, checkpoints, chain, keys, visit)
    if isinstance(result, Broken):
        return result
    unsealed = conn.scalar(select(func.count()).select_from(table).where(table.c.seq.is_(None)))
    return Verified(result.seq, result.checkpoint, result.checkpoints, unsealed or 0)


def _walk(entries: Iterator[Any], checkpoints: Iterator[Any], chain: AuditLog,
          keys: KeyLookup, visit: Visitor | None) -> Verified | Broken:
    walk, last, signed = Walk(), None, 0
    pending = next(checkpoints, None)
    for row in entries:
        values = row._mapping
        where = f" (id {values['id']}, {values['at']:%Y-%m-%d %H:%M:%S})"
        problem = walk.step(values["seq"], values["hash"], chain.entry(values), where)
        signs: Checkpoint | None = None
        while problem is None and pending is not None and pending.seq <= walk.seq:
            problem, signs = _check(walk, pending, keys, chain.name)
            last, signed = signs or last, signed + 1
            pending = next(checkpoints, None)
        if problem is not None:
            return Broken(problem, walk.seq, last)
        if visit is not None:
            visit(walk, signs)
    if pending is not None:
        problem, _ = _check(walk, pending, keys, chain.name)
        assert problem is not None  # it names an entry past the end of the chain
        return Broken(problem, walk.seq, last)
    return Verified(walk.seq, last, signed, 0)


def _check(walk: Walk, row: Any, keys: KeyLookup, side: str
           ) -> tuple[Break | None, Checkpoint | None]:
    name = f"the checkpoint stored at entry {row.seq}"
    try:
        kid, claims = read(row.jws, keys, side)
    except InvalidCheckpoint as exc:
        return Break(row.seq, "checkpoint", f"{name} {exc}: forged or altered"), None
    if claims["seq"] != row.seq:
        return Break(row.seq, "checkpoint", f"{name} signs entry {claims['seq']}: the "
                     "checkpoints were altered"), None
    problem = walk.checkpoint(claims["seq"], claims["hash"], name)
    if problem is not None:
        return problem, None
    return None, Checkpoint(claims["seq"], str(claims.get("signedAt")), kid, row.jws)
