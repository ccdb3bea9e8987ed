"""The tables of the CAMARA APIs, on the operator's schema (``operator_metadata``).

``sim_swap_subscriptions`` holds the SIM Swap subscriptions
(:mod:`numident.camara.sim_swap_events`): one row per subscription, kept after it ends so
that its last events still go out with its credential. The registry's tables it refers to
(``organizers``) are the operator's (:mod:`numident.operator.tables`).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, Text

from numident.operator import tables as _operator_tables  # noqa: F401  (organizers.id)
from numident.storage.schema import operator_metadata as metadata
from numident.storage.types import UtcDateTime

sim_swap_subscriptions = Table(
    "sim_swap_subscriptions", metadata,
    Column("id", String(36), primary_key=True),
    Column("organizer_id", Integer, ForeignKey("organizers.id"), nullable=False, index=True),
    Column("phone_number", String(16), nullable=False, index=True),
    Column("by_token", Boolean, nullable=False,
           comment="the line came from a three-legged token: never shown back or sent"),
    Column("sink", Text, nullable=False),
    Column("sink_token", Text, nullable=True,
           comment="the sink credential's access token, sealed (AES-GCM, v1:...)"),
    Column("sink_token_expires_at", UtcDateTime, nullable=True),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("max_events", Integer, nullable=True),
    Column("events_sent", Integer, nullable=False, default=0),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("termination_reason", String(32), nullable=True),
)
