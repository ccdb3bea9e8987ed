"""Which tables are chained: each side's audit tables, their chain columns and checkpoints.

The operator has one chain (``audit``); the messenger two, each with its own sequence,
checkpoints and lock: ``account_audit`` and ``possession_audit``.

A chained table keeps its own columns (the entry's content) and gains ``seq`` (the entry's
place in the chain, NULL until sealed, unique) and ``hash`` (``H(seq)``, see
:mod:`numident.audit.chain`). A partial index finds the unsealed rows without scanning the
sealed ones, so sealing costs the same however long the chain is. Checkpoints live in a
table of their own, append-only like the trail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    text,
)

from numident.audit.chain import timestamp
from numident.storage.types import UtcDateTime

Side = Literal["operator", "messenger"]


def chain_columns(table: str) -> list[Column[Any] | Index]:
    """``seq`` and ``hash`` with their indexes, for a chained table's definition: ``seq`` is
    unique, and a partial index holds the rows still waiting for the sealer, in the order
    they will be chained."""
    return [Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=True,
                   comment="place in the hash chain; NULL until sealed"),
            Column("hash", String(64), nullable=True,
                   comment="hex SHA-256 of the entry's canonical record (docs/audit.md)"),
            Index(f"ix_{table}_seq", "seq", unique=True),
            Index(f"ix_{table}_unsealed", "id", postgresql_where=text("seq IS NULL"),
                  sqlite_where=text("seq IS NULL"))]


def checkpoint_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name, metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=False, comment="the entry whose hash is signed"),
        Column("hash", String(64), nullable=False),
        Column("signed_at", UtcDateTime, nullable=False),
        Column("kid", String(128), nullable=False),
        Column("jws", Text, nullable=False, comment="the signed checkpoint, a compact JWS"),
    )


@dataclass(frozen=True)
class AuditLog:
    """One chained audit table of a side: ``content`` names the columns an entry's hash
    covers."""

    side: Side
    table: Table
    checkpoints: Table
    content: tuple[str, ...]
    lock_key: int
    """The PostgreSQL advisory lock that serialises this chain's sealers."""
    name: str
    """The chain's name, the ``log`` claim of its checkpoints: the side's name for its main
    trail, so that no chain's checkpoint can pass for another's."""

    def entry(self, row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
        """An entry's content as the chain hashes it (times in :func:`timestamp` form)."""
        return self.entry_of([row[name] for name in self.content])

    def entry_of(self, values: Sequence[Any]) -> dict[str, Any]:
        """:meth:`entry` from the content's values, in the order of :attr:`content`."""
        return {name: timestamp(value) if isinstance(value, datetime) else value
                for name, value in zip(self.content, values, strict=True)}


def audit_log(side: Side) -> AuditLog:
    """The main chained audit table of ``side`` (``audit`` or ``account_audit``)."""
    if side == "operator":
        from numident.operator.tables import audit, audit_checkpoints

        return AuditLog("operator", audit, audit_checkpoints,
                        ("at", "actor", "action", "phone_number", "identification_code",
                         "request_id", "detail"), lock_key=0x6E756D6964_01, name="operator")
    from numident.messenger.tables import account_audit, account_audit_checkpoints

    return AuditLog("messenger", account_audit, account_audit_checkpoints,
                    ("account_id", "at", "from_state", "to_state", "reason", "phone_number",
                     "detail", "operator_inn"), lock_key=0x6E756D6964_02, name="messenger")


def possession_log() -> AuditLog:
    """The messenger's second chain: ``possession_audit`` (each code sent, provider failure
    and refusal), with checkpoints of its own named ``messenger-possession``."""
    from numident.messenger.tables import possession_audit, possession_audit_checkpoints

    return AuditLog("messenger", possession_audit, possession_audit_checkpoints,
                    ("at", "account_id", "phone_number", "client_address", "channel", "event",
                     "reason", "detail"), lock_key=0x6E756D6964_03, name="messenger-possession")


def audit_logs(side: Side) -> tuple[AuditLog, ...]:
    """Every chained audit table of ``side``, in the order they are sealed and verified."""
    return (audit_log(side),) if side == "operator" else (audit_log(side), possession_log())
