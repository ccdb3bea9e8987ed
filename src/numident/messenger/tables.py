"""The messenger service's tables (SQLAlchemy Core, registered on ``messenger_metadata``).

Names are chosen not to clash with the operator gateway's tables, so that both sides may share
one PostgreSQL database in tests: ``accounts``, ``account_audit``, ``identification_attempts``,
``received_notices``, ``possession_challenges``, ``code_sends``, ``possession_audit``,
``bulk_identifications`` and the outbox ``messenger_outbox``.

``account_audit`` and ``possession_audit`` are append-only (SPEC rule 8): the code only ever
inserts into them. Each is a hash chain of its own (:mod:`numident.audit`): the sealer gives
every row its ``seq`` and ``hash`` once, and signs each chain's head into
``account_audit_checkpoints`` and ``possession_audit_checkpoints``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from numident.audit.log import chain_columns, checkpoint_table
from numident.outbox.tables import outbox_table
from numident.storage.schema import messenger_metadata as metadata
from numident.storage.types import UtcDateTime

accounts = Table(
    "accounts", metadata,
    Column("account_id", String(128), primary_key=True),
    Column("phone_number", String(16), nullable=True),
    Column("state", String(32), nullable=False),
    Column("operator_inn", String(16), nullable=True),
    Column("operator_name", String(256), nullable=True),
    Column("identification_code", String(128), nullable=False, unique=True,
           comment="opaque, random, new for every phone number"),
    Column("reason", String(64), nullable=True),
    Column("attempt_id", String(36), nullable=True, comment="the identification in force"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sim_swapped_at", UtcDateTime, nullable=True),
    Index("ix_accounts_operator_code", "operator_inn", "identification_code"),
)

account_audit = Table(
    "account_audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("account_id", String(128), nullable=False, index=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("phone_number", String(16), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("operator_inn", String(16), nullable=True,
           comment="the account's operator (ИНН) when the entry was written"),
    *chain_columns("account_audit"),
)

account_audit_checkpoints = checkpoint_table(metadata, "account_audit_checkpoints")

identification_attempts = Table(
    "identification_attempts", metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(128), nullable=False, index=True),
    Column("phone_number", String(16), nullable=False),
    Column("identification_code", String(128), nullable=False),
    Column("operator_inn", String(16), nullable=False),
    Column("request_id", String(64), nullable=True, comment="the gateway's, once accepted"),
    Column("status", String(16), nullable=False, comment="open | finished | superseded"),
    Column("outcome", String(16), nullable=True,
           comment="identified | refused | unanswered, once finished"),
    Column("reason", String(64), nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("first_sent_at", UtcDateTime, nullable=True),
    Column("answer_due", UtcDateTime, nullable=False),
    Column("next_poll_at", UtcDateTime, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
    Column("polls", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("invalidated_by", String(128), nullable=True,
           comment="the notice that voided the question in flight; its answer is asked again"),
    Column("invalidated_at", UtcDateTime, nullable=True),
    Index("ix_identification_attempts_open", "status", "next_poll_at"),
)

received_notices = Table(
    "received_notices", metadata,
    Column("operator_inn", String(16), nullable=False),
    Column("event_id", String(128), nullable=False, comment="the CloudEvent id"),
    Column("type", String(64), nullable=False),
    Column("identification_code", String(128), nullable=True),
    Column("phone_number", String(16), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("accounts_affected", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("operator_inn", "event_id"),
)

possession_challenges = Table(
    "possession_challenges", metadata,
    Column("account_id", String(128), primary_key=True, comment="one open challenge each"),
    Column("phone_number", String(16), nullable=False),
    Column("code_hash", String(64), nullable=True,
           comment="HMAC-SHA256, never the code; none while a flash call is being placed"),
    Column("status", String(16), nullable=False, comment="sending | open | used | burnt"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("last_sent_at", UtcDateTime, nullable=True),
    Column("channel", String(16), nullable=True, comment="sms | flash_call | voice_call"),
    Column("send_id", BigInteger, nullable=True, comment="its code_sends row"),
)

code_sends = Table(
    "code_sends", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("account_id", String(128), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("plan_range", String(32), nullable=True, comment="the numbering plan's range"),
    Column("region", String(256), nullable=True),
    Column("client_address", String(64), nullable=True, comment="IPv4, or an IPv6 /64"),
    Column("channel", String(16), nullable=True, comment="the channel that carried the code"),
    Column("status", String(16), nullable=False, comment="sending | sent | failed"),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Index("ix_code_sends_at", "at"),
    Index("ix_code_sends_number", "phone_number", "at"),
    Index("ix_code_sends_range", "plan_range", "at"),
    Index("ix_code_sends_region", "region", "at"),
    Index("ix_code_sends_address", "client_address", "at"),
)
"""Every admitted code request: what the send budgets and the range circuit count."""

possession_audit = Table(
    "possession_audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("account_id", String(128), nullable=False, index=True),
    Column("phone_number", String(16), nullable=False),
    Column("client_address", String(64), nullable=True),
    Column("channel", String(16), nullable=True),
    Column("event", String(16), nullable=False, comment="sent | failed | refused"),
    Column("reason", String(64), nullable=True),
    Column("detail", JSON, nullable=True),
    *chain_columns("possession_audit"),
)
"""Append-only and chained: each code sent, each provider failure, each refusal and why."""

possession_audit_checkpoints = checkpoint_table(metadata, "possession_audit_checkpoints")

bulk_identifications = Table(
    "bulk_identifications", metadata,
    Column("account_id", String(128), primary_key=True),
    Column("phone_number", String(16), nullable=False),
    Column("identification_code", String(128), nullable=False, unique=True),
    Column("possession_proven_at", UtcDateTime, nullable=False),
    Column("operator_inn", String(16), nullable=True),
    Column("operator_name", String(256), nullable=True),
    Column("status", String(32), nullable=False,
           comment="queued | pending | identified | refused | unanswered | "
           "reidentification_required | skipped"),
    Column("reason", String(64), nullable=True),
    Column("request_id", String(64), nullable=True, comment="the gateway's, while pending"),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("answer_due", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_bulk_identifications_work", "operator_inn", "status", "account_id"),
)

messenger_outbox = outbox_table(metadata, "messenger_outbox")
