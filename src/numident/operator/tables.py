"""The operator gateway's tables (SQLAlchemy Core, registered on ``operator_metadata``).

``subscribers`` is the current registry row per number; ``subscriber_history`` keeps every
change (imports and lifecycle events) so that questions about the past can be answered.
``holders`` holds what the billing export says about the holder of each line's contract (KYC
Match, KYC Tenure): the row names the contract and start it describes, so that a later change of
holder leaves it unused rather than attributed to the new holder. The attributes compared only
for equality are HMAC digests (:mod:`numident.camara.holders`).
``ciba_requests`` holds backchannel authentication requests by the SHA-256 of their
``auth_req_id``, and ``ciba_clients`` how each organizer learns their decisions
(:mod:`numident.operator.ciba`).
``organizer_daily_items`` counts each organizer's identification items per UTC day, so that the
daily quota holds across every replica on one database.
``subscriber_imports`` is the journal of registry imports switched in by chunks, and
``subscriber_import_rows`` / ``subscriber_import_holders`` the rows an import has still to apply
(:mod:`numident.operator.registry_switch`); ``import_runs`` keeps one row per import of the
billing export, loaded or refused.
``audit`` is append-only: the migration installs triggers that refuse UPDATE and DELETE, save
the sealer's one-time setting of ``seq`` and ``hash``; ``audit_checkpoints`` holds the signed
heads of its hash chain (:mod:`numident.audit`).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    literal_column,
    text,
)

from numident.audit.log import chain_columns, checkpoint_table
from numident.outbox.tables import outbox_table
from numident.storage.schema import operator_metadata as metadata
from numident.storage.types import UtcDateTime

organizers = Table(
    "organizers", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("notice_url", Text, nullable=False),
    Column("public_key", Text, nullable=False, comment="public JWK (JSON)"),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("scopes", Text, nullable=False, server_default="identification",
           comment="space-separated OAuth2 scopes the organizer may be granted"),
    Column("redirect_uris", Text, nullable=False, server_default="",
           comment="space-separated redirect URIs of the authorization-code flow"),
    Column("rate_limit", Integer, nullable=True,
           comment="identification items per second; NULL: the gateway's default"),
    Column("daily_quota", Integer, nullable=True,
           comment="identification items per UTC day; NULL: the gateway's default"),
)

organizer_daily_items = Table(
    "organizer_daily_items", metadata,
    Column("organizer_id", Integer, ForeignKey("organizers.id"), primary_key=True),
    Column("day", Date, primary_key=True, comment="UTC day"),
    Column("item_count", BigInteger, nullable=False,
           comment="identification items accepted that day, counted against the daily quota"),
)

network_sessions = Table(
    "network_sessions", metadata,
    Column("session_id", String(128), primary_key=True,
           comment="the connection as the network sees it: client address or enrichment id"),
    Column("phone_number", String(16), nullable=False),
    Column("authentication", String(16), nullable=False,
           comment="how the network knows the line: network, sim, or otp"),
    Column("updated_at", UtcDateTime, nullable=False),
)

authorization_codes = Table(
    "authorization_codes", metadata,
    Column("code_hash", String(64), primary_key=True, comment="SHA-256 of the code, hex"),
    Column("client_id", String(128), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("authentication", String(16), nullable=False),
    Column("code_challenge", String(128), nullable=True,
           comment="PKCE S256 challenge (RFC 7636), when the client sent one"),
    Column("nonce", Text, nullable=True,
           comment="OpenID Connect nonce of the authorization request, for the ID token"),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("used_at", UtcDateTime, nullable=True),
)

ciba_clients = Table(
    "ciba_clients", metadata,
    Column("client_id", String(128), primary_key=True, comment="the organizer's name"),
    Column("delivery_mode", String(8), nullable=False, comment="poll or ping (CIBA Core 5)"),
    Column("notification_endpoint", Text, nullable=True,
           comment="backchannel_client_notification_endpoint (ping mode)"),
)

ciba_requests = Table(
    "ciba_requests", metadata,
    Column("id_hash", String(64), primary_key=True, comment="SHA-256 of the auth_req_id, hex"),
    Column("client_id", String(128), nullable=False),
    Column("scope", Text, nullable=False, comment="the API scopes the token will carry"),
    Column("purpose", String(128), nullable=False, comment="the dpv: purpose asked for"),
    Column("phone_number", String(16), nullable=False, index=True),
    Column("amr", String(16), nullable=True,
           comment="how the subscriber was authenticated, when it was (RFC 8176)"),
    Column("binding_message", Text, nullable=True),
    Column("delivery_mode", String(8), nullable=False),
    Column("notification_endpoint", Text, nullable=True),
    Column("ping_sealed", Text, nullable=True,
           comment="ping mode: the auth_req_id and client_notification_token, sealed"),
    Column("consent_hash", String(64), nullable=True, unique=True,
           comment="SHA-256 of the secret in the subscriber's approve/deny URL"),
    Column("state", String(8), nullable=False, comment="pending, approved or denied"),
    Column("interval", Integer, nullable=False, comment="seconds the client waits between polls"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("last_polled_at", UtcDateTime, nullable=True),
    Column("decided_at", UtcDateTime, nullable=True),
    Column("used_at", UtcDateTime, nullable=True),
)

subscribers = Table(
    "subscribers", metadata,
    Column("phone_number", String(16), primary_key=True),
    Column("contract_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sim_changed_at", UtcDateTime, nullable=True),
)

subscriber_history = Table(
    "subscriber_history", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("phone_number", String(16), nullable=False, index=True),
    Column("contract_id", String(64), nullable=True),
    Column("status", String(16), nullable=True),
    Column("change", String(32), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)

KEYED_DIGEST = "HMAC-SHA256 (holder key) of column, line and normal form, hex; never the value"


def _keyed_digest(name: str) -> Column[str]:
    return Column(name, String(64), nullable=True, comment=KEYED_DIGEST)


holders = Table(
    "holders", metadata,
    Column("phone_number", String(16), primary_key=True),
    Column("contract_id", String(64), nullable=False,
           comment="the contract these attributes describe"),
    Column("activated_at", UtcDateTime, nullable=True,
           comment="the start of that contract's holder, as exported with the attributes"),
    Column("contract_type", String(8), nullable=True, comment="PAYG, PAYM or Business"),
    _keyed_digest("id_document"),
    _keyed_digest("id_document_type"),
    _keyed_digest("id_document_expiry_date"),
    _keyed_digest("bank_account_number"),
    Column("name", String(256), nullable=True),
    Column("given_name", String(100), nullable=True),
    Column("family_name", String(150), nullable=True),
    Column("name_kana_hankaku", String(256), nullable=True),
    Column("name_kana_zenkaku", String(256), nullable=True),
    Column("middle_names", String(100), nullable=True),
    Column("family_name_at_birth", String(150), nullable=True),
    Column("address", String(256), nullable=True),
    Column("street_name", String(150), nullable=True),
    Column("street_number", String(20), nullable=True),
    _keyed_digest("postal_code"),
    Column("region", String(100), nullable=True),
    Column("locality", String(100), nullable=True),
    _keyed_digest("country"),
    Column("house_number_extension", String(20), nullable=True),
    _keyed_digest("birthdate"),
    Column("email", String(254), nullable=True),
    _keyed_digest("gender"),
    Column("city_of_birth", String(100), nullable=True),
    _keyed_digest("country_of_birth"),
    _keyed_digest("nationality"),
    Column("holder_key_id", String(16), nullable=True,
           comment="the id of the holder key of this row's HMAC digests"),
    Column("updated_at", UtcDateTime, nullable=False),
)

subscriber_imports = Table(
    "subscriber_imports", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(10), nullable=False,
           comment="staging (rows being written), switching (being applied) or done"),
    Column("imported_at", UtcDateTime, nullable=False,
           comment="the import's time: of its registry rows, history and notices"),
    Column("notice_source", Text, nullable=False),
    Column("has_holders", Boolean, nullable=False),
    Column("history_mark", BigInteger, nullable=False,
           comment="the last subscriber_history id when the import began: a lifecycle event "
           "recorded after it is newer than the export"),
    Column("row_count", Integer, nullable=False, comment="rows staged"),
    Column("applied", Integer, nullable=False,
           comment="rows switched in so far, in seq order"),
    Column("inserted", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("superseded", Integer, nullable=False, default=0,
           comment="rows left as a lifecycle event recorded during the import made them"),
    Column("notices", Integer, nullable=False, default=0),
    Column("heartbeat_at", UtcDateTime, nullable=False,
           comment="when the process writing or applying it last made progress"),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_subscriber_imports_state", "state", "id"),
)

subscriber_import_rows = Table(
    "subscriber_import_rows", metadata,
    Column("import_id", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True, comment="1.. in phone_number order"),
    Column("phone_number", String(16), nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
)

IMPORT_HOLDER_COLUMNS = ["phone_number", "contract_id", "activated_at",
                         *(c.name for c in holders.columns
                           if c.name not in ("phone_number", "contract_id", "activated_at"))]
"""The holder attributes an import stages, in ``holders``' order (``updated_at`` last)."""

subscriber_import_holders = Table(
    "subscriber_import_holders", metadata,
    Column("import_id", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    *(Column(name, holders.c[name].type, nullable=True) for name in IMPORT_HOLDER_COLUMNS),
)

identification_requests = Table(
    "identification_requests", metadata,
    Column("request_id", String(36), primary_key=True),
    Column("organizer_id", Integer, ForeignKey("organizers.id"), nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("identification_code", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("result", String(16), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("answer_due", UtcDateTime, nullable=False),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("lease_until", UtcDateTime, nullable=True,
           comment="a pending request is being checked by one replica until then"),
    # Every request is written once and most are answered at once, so the indexes are kept
    # to what reads need: the pending ones (the deferred queue, by deadline; a repeat of a
    # pending request, by key) are indexed only while pending, in partial indexes that a
    # request leaves when it is answered; the rest is found by id, or by time.
    Index("ix_identification_requests_pending", "answer_due",
          sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    # Time windows (the console's traffic per minute and answer times) read a range of it,
    # never the whole table, which grows with every request.
    Index("ix_identification_requests_received_at", "received_at"),
    # One pending request per (organizer, number, code): a repeat returns the pending one.
    # Keys here lead with their selective column, never the organizer (a gateway has a
    # handful): a planner without statistics then still seeks the numbers it is given rather
    # than reading every pending request of the organizer (migration 0016).
    Index("uq_identification_requests_pending", "phone_number", "identification_code",
          "organizer_id", unique=True, sqlite_where=text("status = 'pending'"),
          postgresql_where=text("status = 'pending'")),
)

PENDING = identification_requests.c.status == literal_column("'pending'")
"""``status = 'pending'``, spelled as in the partial indexes above: a query must carry the
literal for the planners to use them (SQLite's never sees a bound parameter's value)."""

usages = Table(
    "usages", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("organizer_id", Integer, ForeignKey("organizers.id"), nullable=False),
    Column("identification_code", String(128), nullable=False),
    Column("phone_number", String(16), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("since", UtcDateTime, nullable=False),
    Column("last_confirmed_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("end_reason", String(32), nullable=True),
    # Led by the code, as the pending requests' key is by the number (see there).
    Index("uq_usages_active", "identification_code", "organizer_id", "phone_number",
          unique=True),
    # One active usage per (organizer, code): a code names one user, on one number at a time.
    Index("uq_usages_active_code", "identification_code", "organizer_id", unique=True,
          sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'")),
)

deferred_replicas = Table(
    "deferred_replicas", metadata,
    Column("replica_id", String(36), primary_key=True),
    Column("answers_per_second", Float, nullable=False,
           comment="the replica's measured drain rate of deferred requests"),
    Column("valid_until", UtcDateTime, nullable=False,
           comment="the rate counts for admission until then; a live replica renews it"),
)

lifecycle_events = Table(
    "lifecycle_events", metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("phone_number", String(16), nullable=False, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("source", String(16), nullable=False),
    Column("new_contract_id", String(64), nullable=True),
)

audit = Table(
    "audit", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("phone_number", String(16), nullable=True, index=True),
    Column("identification_code", String(128), nullable=True),
    Column("request_id", String(36), nullable=True),
    Column("detail", JSON, nullable=True),
    # Reports read one action over a period (numident.operator.sla).
    Index("ix_audit_action_at", "action", "at"),
    *chain_columns("audit"),
)

import_runs = Table(
    "import_runs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("started_at", UtcDateTime, nullable=False, index=True),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("file_name", Text, nullable=False, comment="the file's name, without its folder"),
    Column("outcome", String(16), nullable=False, comment="loaded, or refused (nothing written)"),
    Column("partial", Boolean, nullable=False, comment="--partial: bad rows set aside"),
    Column("rows", BigInteger, nullable=False, default=0),
    Column("inserted", BigInteger, nullable=False, default=0),
    Column("updated", BigInteger, nullable=False, default=0),
    Column("unchanged", BigInteger, nullable=False, default=0),
    Column("rejected", BigInteger, nullable=False, default=0,
           comment="bad rows: set aside (partial) or the reason of a refusal"),
    Column("notices", BigInteger, nullable=False, default=0),
    Column("problem", Text, nullable=True, comment="why a refused import was refused"),
)

audit_checkpoints = checkpoint_table(metadata, "audit_checkpoints")

used_assertions = Table(
    "used_assertions", metadata,
    Column("jti", String(255), primary_key=True),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

outbox = outbox_table(metadata)
