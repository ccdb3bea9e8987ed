"""The outbox table, declared by a factory so that each process kind registers its own copy.

The operator gateway keeps its notices on ``operator_metadata``, the messenger service its
state-change webhooks on ``messenger_metadata``; both use the same columns and the same code.

Row life cycle (``status``)::

    pending --(dispatcher delivers)--> delivered
       |  \\--(policy gives up / receiver rejects)--> dead --(staff requeue)--> pending
       \\--(JetStream relay publishes)--> relayed --(worker delivers)--> delivered
                                            \\--(worker gives up)--> dead

``lease_until`` marks a row as being worked on by one dispatcher or relay; a row whose lease
has expired is claimable again, which is what makes a killed process lose nothing.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from numident.storage.types import UtcDateTime

PENDING = "pending"
RELAYED = "relayed"
DELIVERED = "delivered"
DEAD = "dead"
STATUSES = (PENDING, RELAYED, DELIVERED, DEAD)

ERROR_TEXT_LIMIT = 1000


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """Declare the outbox table called ``name`` on ``metadata`` and return it."""
    return Table(
        name,
        metadata,
        Column("id", String(64), primary_key=True, comment="the event id; receivers dedupe by it"),
        Column("kind", String(32), nullable=False),
        Column("owner", String(128), nullable=True, index=True),
        Column("destination", Text, nullable=False),
        Column("content_type", String(128), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("status", String(16), nullable=False, default=PENDING),
        Column("attempts", Integer, nullable=False, default=0),
        Column("requeues", Integer, nullable=False, default=0),
        Column("created_at", UtcDateTime, nullable=False),
        Column("requeued_at", UtcDateTime, nullable=True),
        Column("next_attempt_at", UtcDateTime, nullable=False),
        Column("last_attempt_at", UtcDateTime, nullable=True),
        Column("delivered_at", UtcDateTime, nullable=True),
        Column("last_error", Text, nullable=True),
        Column("lease_until", UtcDateTime, nullable=True),
        Index(f"ix_{name}_status_next_attempt_at", "status", "next_attempt_at"),
    )
