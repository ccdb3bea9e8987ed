"""The schema steps that turn an audit table into a chain, shared by both sides' migrations.

``chain_table`` adds ``seq``/``hash`` and the checkpoints table, chains the rows already
there in their insertion order (``id``), and reinstalls the append-only triggers so that the
sealer's one UPDATE passes. It reads the rows through a table of its own (the columns as they
are at this revision), so later changes to the models cannot change what it does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from numident.audit.log import AuditLog, audit_log, possession_log
from numident.audit.sealer import lock_chain, seal_batch
from numident.storage.append_only import allow_changes, forbid_changes
from numident.storage.types import UtcDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def chain_table(op: Any, chain: AuditLog) -> None:
    table, checkpoints = chain.table.name, chain.checkpoints.name
    allow_changes(op, table)
    op.add_column(table, sa.Column("seq", ID, nullable=True,
                                   comment="place in the hash chain; NULL until sealed"))
    op.add_column(table, sa.Column(
        "hash", sa.String(length=64), nullable=True,
        comment="hex SHA-256 of the entry's canonical record (docs/audit.md)"))
    op.create_index(f"ix_{table}_seq", table, ["seq"], unique=True)
    op.create_index(f"ix_{table}_unsealed", table, ["id"], unique=False,
                    postgresql_where=sa.text("seq IS NULL"), sqlite_where=sa.text("seq IS NULL"))
    op.create_table(
        checkpoints,
        sa.Column("seq", ID, autoincrement=False, nullable=False,
                  comment="the entry whose hash is signed"),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("kid", sa.String(length=128), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False,
                  comment="the signed checkpoint, a compact JWS"),
        sa.PrimaryKeyConstraint("seq", name=op.f(f"pk_{checkpoints}")))
    conn = op.get_bind()
    here = _as_of_now(chain)
    lock_chain(conn, here)
    while seal_batch(conn, here, 5000)[0]:
        pass
    forbid_changes(op, table, sealable=chain.content)
    forbid_changes(op, checkpoints)


def unchain_table(op: Any, chain: AuditLog) -> None:
    table, checkpoints = chain.table.name, chain.checkpoints.name
    allow_changes(op, checkpoints)
    op.drop_table(checkpoints)
    allow_changes(op, table)
    op.drop_index(f"ix_{table}_unsealed", table_name=table)
    op.drop_index(f"ix_{table}_seq", table_name=table)
    with op.batch_alter_table(table) as batch:
        batch.drop_column("hash")
        batch.drop_column("seq")
    forbid_changes(op, table)


def _as_of_now(chain: AuditLog) -> AuditLog:
    """``chain`` read through the columns this revision knows."""
    source = chain.table
    columns: list[sa.Column[Any]] = [sa.Column("id", ID, primary_key=True), sa.Column("seq", ID),
               sa.Column("hash", sa.String(64)),
               *(sa.Column(name, source.c[name].type) for name in chain.content)]
    table = sa.Table(source.name, sa.MetaData(), *columns)
    return replace(chain, table=table)


__all__ = ["audit_log", "chain_table", "possession_log", "unchain_table"]
