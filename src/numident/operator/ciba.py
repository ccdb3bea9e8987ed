"""Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0): the requests' lifecycle.

A back-end organizer asks for a token about a line (``POST /oauth2/bc-authorize``) named by
its ``login_hint``: ``tel:+E164``, ``phone_number:+E164``, or ``operatortoken:<session>`` for a
line the network-session source knows. ``scope`` names exactly one CAMARA purpose
(``dpv:...``, configured in ``[operator.ciba].purposes``) and the API scopes, which must be
registered for the organizer (``openid`` may be sent and is ignored: no ID token is issued).
The gateway answers with an ``auth_req_id`` that lives ``expires_in`` seconds, and decides the
request through its :class:`~numident.operator.consent.ConsentCapture`: at once, or once the
subscriber answered on the approve/deny page.

The client learns the decision by polling the token endpoint
(``grant_type=urn:openid:params:grant-type:ciba``) no faster than ``interval`` (a faster poll
is ``slow_down`` and adds 5 s to its interval), or, when it registered the ping mode, by a POST
of ``{"auth_req_id"}`` to its ``backchannel_client_notification_endpoint`` with its
``client_notification_token`` as bearer token, queued in the outbox in the transaction that
records the decision. An approved request buys one access token bound to the line, like an
authorization-code token; the ``auth_req_id`` is then spent (a denial spends it too).

The state is in the database (``ciba_requests``: the SHA-256 of the ``auth_req_id`` and of
the page secret, never the secrets themselves), so that every replica answers every request.
What a request may carry, and how fast a client may poll, are the pure rules of
:mod:`numident.core.ciba`. Refusals are its :class:`~numident.core.ciba.CibaRefusal`, with the
specification's error code; a refused request leaves nothing but its audit entry.
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import structlog
from sqlalchemy import Connection, Engine, Row, delete, select, update

from numident.config import CibaSettings
from numident.core import ciba as rules
from numident.core.ciba import CibaRefusal
from numident.core.clock import Clock
from numident.errors import InvalidInput
from numident.operator import audit
from numident.operator.authorization import (
    Authentication,
    NetworkSession,
    NetworkSessionSource,
)
from numident.operator.consent import ConsentCapture, Invitation
from numident.operator.tables import ciba_clients, ciba_requests, outbox, subscribers
from numident.outbox.store import OutboxMessage, enqueue
from numident.sinks.tokens import SinkTokenCipher
from numident.storage.database import read_only
from numident.storage.dialect import upsert
from numident.storage.ids import new_id
from numident.trust.tokens import AccessTokenIssuer, IssuedToken

GRANT_TYPE = "urn:openid:params:grant-type:ciba"
PING_KIND = "ciba_ping"
_AUDITED_DESCRIPTION = 300
log = structlog.get_logger(__name__)


class DeliveryMode(enum.StrEnum):
    POLL = "poll"
    PING = "ping"


@runtime_checkable
class SessionLookup(Protocol):
    def session_by_key(self, key: str) -> NetworkSession | None: ...


@dataclass(frozen=True)
class Started:
    """The successful answer to an authentication request (CIBA Core 7.3)."""

    auth_req_id: str
    expires_in: int
    interval: int


class ConsentOutcome(enum.StrEnum):
    RECORDED = "recorded"
    ALREADY_DECIDED = "already_decided"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ConsentView:
    """What the approve/deny page shows about a pending request."""

    client_id: str
    purpose: str
    scope: str
    binding_message: str | None
    expires_at: datetime


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_client(engine: Engine, client_id: str, mode: DeliveryMode,
                    notification_endpoint: str | None, *, http_allowed: bool) -> None:
    """Record how ``client_id`` learns decisions; ping mode needs an https endpoint (http
    too with ``http_allowed``, the SIM swap sinks' setting)."""
    if mode is DeliveryMode.PING:
        if not _pingable(notification_endpoint or "", http_allowed):
            raise InvalidInput("ping mode needs an absolute https notification endpoint "
                               "without a fragment", code="INVALID_NOTIFICATION_ENDPOINT")
    elif notification_endpoint is not None:
        raise InvalidInput("only ping mode has a notification endpoint",
                           code="INVALID_NOTIFICATION_ENDPOINT")
    with engine.begin() as conn:
        conn.execute(upsert(conn, ciba_clients, ["client_id"],
                            ["delivery_mode", "notification_endpoint"]),
                     {"client_id": client_id, "delivery_mode": mode.value,
                      "notification_endpoint": notification_endpoint})


def _pingable(url: str, http_allowed: bool) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    scheme_ok = parts.scheme == "https" or (http_allowed and parts.scheme == "http")
    return (scheme_ok and bool(parts.hostname) and not parts.fragment
            and not any(c.isspace() for c in url) and len(url) <= 2048)


class Ciba:
    """The CIBA use cases of one gateway (thread-safe: all state is in the database)."""

    def __init__(self, engine: Engine, clock: Clock, settings: CibaSettings,
                 issuer: AccessTokenIssuer, capture: ConsentCapture, cipher: SinkTokenCipher,
                 sessions: NetworkSessionSource, base_url: str, *, http_endpoints: bool = False,
                 on_ping: Callable[[], None] = lambda: None) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.issuer = issuer
        self.capture = capture
        self.cipher = cipher
        self.sessions = sessions
        self.base_url = base_url
        self.http_endpoints = http_endpoints
        """Whether ping clients may register http:// endpoints (``sim_swap_http_sinks``)."""
        self.on_ping = on_ping
        """Called after a ping was queued, so the dispatcher sends it at once."""

    # -- the backchannel authentication endpoint -------------------------------------------

    def start(self, client_id: str, registered_scopes: frozenset[str],
              form: Mapping[str, str]) -> Started:
        """Accept an authentication request (CIBA Core 7.1) or raise its refusal."""
        now = self.clock.now()
        try:
            prepared = self._prepare(client_id, registered_scopes, form, now)
        except CibaRefusal as refusal:
            with self.engine.begin() as conn:
                audit.write(conn, [audit.entry(now, client_id, "ciba.refused", detail={
                    "error": refusal.error,
                    "description": refusal.message[:_AUDITED_DESCRIPTION]})])
            raise
        auth_req_id = secrets.token_urlsafe(32)
        consent_secret = None if prepared.approved else secrets.token_urlsafe(32)
        id_hash = _digest(auth_req_id)
        ping_sealed = None
        if prepared.mode is DeliveryMode.PING:
            ping_sealed = self.cipher.seal(f"ciba:{id_hash}", json.dumps(
                {"auth_req_id": auth_req_id, "token": prepared.notification_token}))
        expires_at = now + timedelta(seconds=prepared.expires_in)
        row = {"id_hash": id_hash, "client_id": client_id, "scope": prepared.scope,
               "purpose": prepared.purpose, "phone_number": prepared.line.phone_number,
               "amr": prepared.line.authentication.value if prepared.by_session else None,
               "binding_message": prepared.binding_message,
               "delivery_mode": prepared.mode.value,
               "notification_endpoint": prepared.endpoint, "ping_sealed": ping_sealed,
               "consent_hash": _digest(consent_secret) if consent_secret else None,
               "state": "approved" if prepared.approved else "pending",
               "interval": self.settings.interval_seconds, "created_at": now,
               "expires_at": expires_at, "decided_at": now if prepared.approved else None}
        with self.engine.begin() as conn:
            conn.execute(delete(ciba_requests).where(
                ciba_requests.c.expires_at < now - timedelta(hours=1)))
            conn.execute(ciba_requests.insert().values(**row))
            entries = [audit.entry(now, client_id, "ciba.requested",
                                   phone_number=prepared.line.phone_number,
                                   detail={"purpose": prepared.purpose,
                                           "scope": prepared.scope})]
            if prepared.approved:
                entries.append(audit.entry(now, "operator", "ciba.approved",
                                           phone_number=prepared.line.phone_number,
                                           detail={"basis": "legitimate_interest"}))
                self._queue_ping(conn, row, auth_req_id, now)
            audit.write(conn, entries)
        if prepared.approved and prepared.mode is DeliveryMode.PING:
            self.on_ping()
        if consent_secret is not None:
            self._ask(Invitation(
                prepared.line.phone_number, client_id, prepared.purpose, prepared.scope,
                prepared.binding_message, f"{self.base_url}/oauth2/bc-consent/{consent_secret}",
                expires_at), id_hash, now)
        return Started(auth_req_id, prepared.expires_in, self.settings.interval_seconds)

    def _ask(self, invitation: Invitation, id_hash: str, now: datetime) -> None:
        """Send the invitation; when it cannot go, forget the request, which no one could
        answer, and refuse it."""
        try:
            self.capture.ask(invitation, now)
        except OSError as exc:
            log.warning("ciba_consent_not_sent", client=invitation.client_id, error=str(exc))
            with self.engine.begin() as conn:
                conn.execute(delete(ciba_requests).where(ciba_requests.c.id_hash == id_hash))
                audit.write(conn, [audit.entry(now, invitation.client_id, "ciba.refused",
                                               phone_number=invitation.phone_number,
                                               detail={"error": "temporarily_unavailable"})])
            raise CibaRefusal("temporarily_unavailable",
                              "the subscriber cannot be asked now") from exc

    def _prepare(self, client_id: str, registered: frozenset[str], form: Mapping[str, str],
                 now: datetime) -> _Prepared:
        rules.check_form(form, binding_message_length=self.settings.binding_message_length)
        purpose, scope = rules.requested_scope(form.get("scope", ""), self.settings.purposes,
                                               registered)
        expires_in = rules.lifetime(form.get("requested_expiry"), self.settings.request_seconds)
        mode, endpoint = self._delivery(client_id)
        token = rules.notification_token(form) if mode is DeliveryMode.PING else None
        line, by_session = self._line(rules.parse_login_hint(form["login_hint"]))
        return _Prepared(purpose, scope, line, by_session, form.get("binding_message"),
                         expires_in, mode, endpoint, token,
                         self.capture.approves_at_once(purpose))

    def _delivery(self, client_id: str) -> tuple[DeliveryMode, str | None]:
        with read_only(self.engine) as conn:
            row = conn.execute(select(ciba_clients).where(
                ciba_clients.c.client_id == client_id)).first()
        if row is None:
            return DeliveryMode.POLL, None
        return DeliveryMode(row.delivery_mode), row.notification_endpoint

    def _line(self, hint: rules.LoginHint) -> tuple[NetworkSession, bool]:
        """The line a hint names, and whether a network session named it; a line the
        registry does not hold (or holds terminated) is ``unknown_user_id``."""
        session = None
        if hint.session is not None:
            session = (self.sessions.session_by_key(hint.session)
                       if isinstance(self.sessions, SessionLookup) else None)
            if session is None:
                raise CibaRefusal("unknown_user_id", "the operator token names no line")
        number = session.phone_number if session is not None else str(hint.phone_number)
        with read_only(self.engine) as conn:
            status = conn.execute(select(subscribers.c.status).where(
                subscribers.c.phone_number == number)).scalar_one_or_none()
        if status not in ("active", "suspended"):
            raise CibaRefusal("unknown_user_id", "the login_hint is not a line of this operator")
        return session or NetworkSession(number, Authentication.NETWORK), session is not None

    # -- the token endpoint -----------------------------------------------------------------

    def redeem(self, client_id: str, auth_req_id: str) -> IssuedToken:
        """The token of an approved request, once; else the refusal CIBA Core 11 names."""
        now = self.clock.now()
        refused = CibaRefusal("invalid_grant", "the auth_req_id is not valid")
        with self.engine.begin() as conn:
            row = conn.execute(select(ciba_requests).where(
                ciba_requests.c.id_hash == _digest(auth_req_id))).first()
            if row is None or row.client_id != client_id or row.used_at is not None:
                raise refused
            if row.expires_at <= now:
                raise CibaRefusal("expired_token", "the auth_req_id has expired")
            if row.state == "pending":
                waiting = self._poll(conn, row, now)  # committed: the poll time counts
            else:
                waiting = None
                spent = conn.execute(update(ciba_requests).where(
                    ciba_requests.c.id_hash == row.id_hash, ciba_requests.c.used_at.is_(None))
                    .values(used_at=now)).rowcount
                if spent != 1:
                    raise refused
                audit.write(conn, [audit.entry(now, client_id, f"ciba.{row.state}.redeemed",
                                               phone_number=row.phone_number,
                                               detail={"scope": row.scope})])
        if waiting is not None:
            raise waiting
        if row.state == "denied":
            raise CibaRefusal("access_denied", "the subscriber denied the request")
        return self.issuer.issue(client_id, row.scope, phone_number=row.phone_number,
                                 amr=[row.amr] if row.amr else [])

    def _poll(self, conn: Connection, row: Row[Any], now: datetime) -> CibaRefusal:
        """Record a poll of a pending request: ``slow_down`` when it came too soon."""
        verdict = rules.judge_poll(row.last_polled_at, row.interval, now)
        conn.execute(update(ciba_requests).where(ciba_requests.c.id_hash == row.id_hash)
                     .values(last_polled_at=now, interval=verdict.interval))
        return verdict.refusal()

    # -- the subscriber's approve/deny page -------------------------------------------------

    def consent_view(self, secret: str) -> ConsentView | None:
        """The pending, unexpired request behind a page secret, or None."""
        with read_only(self.engine) as conn:
            row = conn.execute(select(ciba_requests).where(
                ciba_requests.c.consent_hash == _digest(secret))).first()
        if row is None or row.state != "pending" or row.expires_at <= self.clock.now():
            return None
        return ConsentView(row.client_id, row.purpose, row.scope, row.binding_message,
                           row.expires_at)

    def decide(self, secret: str, approve: bool) -> ConsentOutcome:
        """Record the subscriber's answer once, and queue the ping of a ping-mode client."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            row = conn.execute(select(ciba_requests).where(
                ciba_requests.c.consent_hash == _digest(secret))).first()
            if row is None:
                return ConsentOutcome.UNKNOWN
            if row.expires_at <= now:
                return ConsentOutcome.EXPIRED
            state = "approved" if approve else "denied"
            changed = conn.execute(update(ciba_requests).where(
                ciba_requests.c.id_hash == row.id_hash, ciba_requests.c.state == "pending")
                .values(state=state, decided_at=now,
                        amr=self.capture.amr if approve else None)).rowcount
            if changed != 1:
                return ConsentOutcome.ALREADY_DECIDED
            audit.write(conn, [audit.entry(now, "subscriber", f"ciba.{state}",
                                           phone_number=row.phone_number,
                                           detail={"client": row.client_id,
                                                   "purpose": row.purpose})])
            if row.ping_sealed is not None:
                opened = json.loads(self.cipher.open(f"ciba:{row.id_hash}", row.ping_sealed))
                self._queue_ping(conn, row._asdict(), str(opened["auth_req_id"]), now)
        if row.ping_sealed is not None:
            self.on_ping()
        return ConsentOutcome.RECORDED

    def _queue_ping(self, conn: Connection, row: Mapping[str, Any], auth_req_id: str,
                    now: datetime) -> None:
        if row["delivery_mode"] != DeliveryMode.PING.value:
            return
        enqueue(conn, outbox, [OutboxMessage(
            id=new_id(), kind=PING_KIND, owner=row["client_id"],
            destination=row["notification_endpoint"], created_at=now,
            payload=json.dumps({"auth_req_id": auth_req_id}).encode())])

    def notification_token(self, auth_req_id: str) -> str | None:
        """The bearer token a ping for ``auth_req_id`` carries, or None if there is none."""
        id_hash = _digest(auth_req_id)
        with read_only(self.engine) as conn:
            sealed = conn.execute(select(ciba_requests.c.ping_sealed).where(
                ciba_requests.c.id_hash == id_hash)).scalar_one_or_none()
        if sealed is None:
            return None
        return str(json.loads(self.cipher.open(f"ciba:{id_hash}", sealed))["token"])


@dataclass(frozen=True)
class _Prepared:
    purpose: str
    scope: str
    line: NetworkSession
    by_session: bool
    binding_message: str | None
    expires_in: int
    mode: DeliveryMode
    endpoint: str | None
    notification_token: str | None
    approved: bool
