"""Routing data in the messenger's database, versioned so that a reload switches atomically.

Each full load writes its rows under a new ``generation``; one short transaction then makes it
the active generation of its kind (``routing_datasets``) and readers never see a mixture.
``version`` grows with every change, so a process learns cheaply that its index is stale.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, PrimaryKeyConstraint, String, Table, Text

from numident.storage.schema import messenger_metadata as metadata
from numident.storage.types import UtcDateTime

routing_operators = Table(
    "routing_operators", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("inn", String(12), nullable=False, unique=True),
    Column("name", Text, nullable=False),
)

routing_aliases = Table(
    "routing_aliases", metadata,
    Column("alias", String(80), primary_key=True, comment="kind:value, e.g. owner:mMTS, mnc:01"),
    Column("inn", String(12), nullable=False),
)

routing_datasets = Table(
    "routing_datasets", metadata,
    Column("kind", String(8), primary_key=True, comment="plan or ports"),
    Column("generation", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
)

routing_plan = Table(
    "routing_plan", metadata,
    Column("generation", Integer, nullable=False),
    Column("first", BigInteger, nullable=False),
    Column("last", BigInteger, nullable=False),
    Column("operator_id", Integer, nullable=False),
    Column("region", Text, nullable=False),
    PrimaryKeyConstraint("generation", "first"),
)

routing_ports = Table(
    "routing_ports", metadata,
    Column("generation", Integer, nullable=False),
    Column("number", BigInteger, nullable=False),
    Column("operator_id", Integer, nullable=False),
    Column("ported_at", BigInteger, nullable=True, comment="unix seconds"),
    PrimaryKeyConstraint("generation", "number"),
)

routing_load_lock = Table(
    "routing_load_lock", metadata,
    Column("name", String(16), primary_key=True),
    Column("holder", String(36), nullable=True, comment="the lease holder's token; NULL: free"),
    Column("purpose", Text, nullable=True, comment="what the holder loads, for waiters"),
    Column("acquired_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("fence", Integer, nullable=False,
           comment="grows with every acquisition; a full load's generation"),
)
