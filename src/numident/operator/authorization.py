"""Three-legged access: which subscriber a device's connection belongs to, and the codes of the
OAuth2 authorization-code flow (RFC 6749 section 4.1) that bind a token to that subscriber.

The mobile network knows which line a connection comes from: a packet gateway's session, told to
the API by a trusted proxy that enriches requests with a header (or by the client address the
network assigned). :class:`NetworkSessionSource` is that knowledge as a port; the built-in
:class:`TableSessionSource` reads the ``network_sessions`` table, which the operator's staff, a
provisioning feed or a test fill. A session records how the line was authenticated: ``network``
(the connection itself), ``sim`` (SIM-based, e.g. EAP-AKA) or ``otp`` (a one-time code, as for a
device off the mobile network); Number Verification accepts only the first two.

Codes are random, stored only as their SHA-256, single-use, bound to the client and redirect
URI, and live ``authorization_code_seconds``. A client may bind a code to a secret of its own
with PKCE (RFC 7636, ``S256`` only); ``operator.camara.require_pkce`` makes that mandatory. A
code issued without a challenge is never redeemed with a verifier (RFC 9700 section 4.8.2).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, select, update
from starlette.requests import Request

from numident.errors import InvalidInput, NotFound
from numident.operator.oauth_errors import OAuthError, OAuthErrorCode
from numident.operator.tables import authorization_codes, network_sessions
from numident.storage.database import read_only
from numident.storage.dialect import upsert


class Authentication(enum.StrEnum):
    NETWORK = "network"
    SIM = "sim"
    OTP = "otp"

    @property
    def by_mobile_network(self) -> bool:
        return self in (Authentication.NETWORK, Authentication.SIM)


@dataclass(frozen=True)
class NetworkSession:
    phone_number: str
    authentication: Authentication


class NetworkSessionSource(Protocol):
    def session_for(self, request: Request) -> NetworkSession | None:
        """The line the request's connection belongs to, or None off the mobile network."""
        ...


class TableSessionSource:
    """Sessions from the ``network_sessions`` table, keyed by an enrichment header or address."""

    def __init__(self, engine: Engine, header: str | None) -> None:
        self._engine = engine
        self._header = header.lower() if header else None

    def session_key(self, request: Request) -> str | None:
        if self._header is not None:
            return request.headers.get(self._header)
        return request.client.host if request.client else None

    def session_for(self, request: Request) -> NetworkSession | None:
        key = self.session_key(request)
        return self.session_by_key(key) if key else None

    def session_by_key(self, key: str) -> NetworkSession | None:
        """The session recorded under ``key`` (a CIBA ``operatortoken:`` login hint names one)."""
        with read_only(self._engine) as conn:
            row = conn.execute(select(network_sessions.c.phone_number,
                                      network_sessions.c.authentication)
                               .where(network_sessions.c.session_id == key)).first()
        if row is None:
            return None
        return NetworkSession(row.phone_number, Authentication(row.authentication))


def set_session(engine: Engine, session_id: str, phone_number: str,
                authentication: Authentication, now: datetime) -> None:
    """Record (or move) a network session; ``phone_number`` must already be E.164."""
    if not 1 <= len(session_id) <= 128:
        raise InvalidInput("a session id is 1-128 characters", code="INVALID_SESSION_ID")
    with engine.begin() as conn:
        conn.execute(upsert(conn, network_sessions, ["session_id"],
                            ["phone_number", "authentication", "updated_at"]),
                     {"session_id": session_id, "phone_number": phone_number,
                      "authentication": authentication.value, "updated_at": now})


def end_session(engine: Engine, session_id: str) -> None:
    with engine.begin() as conn:
        gone = conn.execute(delete(network_sessions)
                            .where(network_sessions.c.session_id == session_id)).rowcount
    if not gone:
        raise NotFound(f"no network session {session_id!r}", code="SESSION_NOT_FOUND")


@dataclass(frozen=True)
class Grant:
    """What a redeemed authorization code grants."""

    client_id: str
    scope: str
    phone_number: str
    authentication: Authentication
    nonce: str | None = None
    """OpenID Connect: the client's ``nonce`` of the authorization request, for the ID token."""


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 sections 4.1 and 4.2


def s256(verifier: str) -> str:
    """The PKCE ``S256`` challenge of ``verifier``: BASE64URL(SHA256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def valid_challenge(challenge: str) -> bool:
    return _PKCE_VALUE.fullmatch(challenge) is not None


def create_code(engine: Engine, *, client_id: str, redirect_uri: str, scope: str,
                session: NetworkSession, now: datetime, lifetime: int,
                code_challenge: str | None = None, nonce: str | None = None) -> str:
    code = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(delete(authorization_codes).where(authorization_codes.c.expires_at < now))
        conn.execute(authorization_codes.insert().values(
            code_hash=_digest(code), client_id=client_id, redirect_uri=redirect_uri,
            scope=scope, phone_number=session.phone_number,
            authentication=session.authentication.value, code_challenge=code_challenge,
            nonce=nonce, expires_at=now + timedelta(seconds=lifetime)))
    return code


def redeem_code(engine: Engine, code: str, *, client_id: str, redirect_uri: str | None,
                now: datetime, code_verifier: str | None = None) -> Grant:
    """Spend a code once. Every refusal is the same ``invalid_grant`` (RFC 6749 section
    5.2), telling nothing more: the code is unknown, used, expired or not this client's."""
    refused = OAuthError(OAuthErrorCode.INVALID_GRANT, "the authorization code is not valid")
    with engine.begin() as conn:
        row = conn.execute(select(authorization_codes)
                           .where(authorization_codes.c.code_hash == _digest(code))).first()
        if row is None or row.used_at is not None or row.expires_at <= now \
                or row.client_id != client_id or row.redirect_uri != redirect_uri \
                or not _proves(row.code_challenge, code_verifier):
            raise refused
        spent = conn.execute(update(authorization_codes)
                             .where(authorization_codes.c.code_hash == row.code_hash,
                                    authorization_codes.c.used_at.is_(None))
                             .values(used_at=now)).rowcount
        if spent != 1:
            raise refused
    return Grant(row.client_id, row.scope, row.phone_number, Authentication(row.authentication),
                 row.nonce)


def _proves(challenge: str | None, verifier: str | None) -> bool:
    if challenge is None:
        return verifier is None
    if verifier is None or _PKCE_VALUE.fullmatch(verifier) is None:
        return False
    return hmac.compare_digest(s256(verifier), challenge)
