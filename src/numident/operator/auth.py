"""Who is calling: organizers by OAuth2 access tokens, the operator's staff by an admin token.

Organizers obtain tokens at ``POST /oauth2/token`` (:mod:`numident.operator.token_endpoint`)
authenticating with ``private_key_jwt`` (RFC 7523): by client credentials (RFC 6749 section
4.4, two-legged tokens) or by redeeming an authorization code (section 4.1, three-legged tokens
bound to the subscriber whose device's connection asked for the code; see
:mod:`numident.operator.authorization`). A token carries only scopes registered for the
organizer. Client authentication fails with ``invalid_client`` (RFC 6749 section 5.2); a
refused access token is a 401 with a stable code.

A token with a Number Verification scope is good for a single API call (CAMARA): its ``jti``
is spent in the shared store on first use, so no replica accepts it again.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import anyio
from sqlalchemy import Engine

from numident.client.assertions import ASSERTION_TYPE
from numident.client.keys import PublicKey
from numident.core.clock import Clock
from numident.errors import NotFound, PermissionDenied, Unauthenticated
from numident.operator import organizers
from numident.operator.oauth_errors import OAuthError, OAuthErrorCode
from numident.operator.organizers import OrganizerRecord
from numident.trust.assertions import verify_client_assertion
from numident.trust.replay import JtiStore
from numident.trust.tokens import AccessTokenIssuer, TokenClaims
from numident.web.access_log import note_organizer
from numident.web.refusals import claimed_issuer, log_refusal
from numident.wire.bearer import bearer_token

IDENTIFICATION_SCOPE = "identification"
SINGLE_USE_SCOPE_PREFIX = "number-verification:"
REGISTRATION_FRESH_FOR = timedelta(seconds=1)
"""How long a replica trusts the organizer registration it read (key, scopes, status)."""


def single_use(scopes: Iterable[str]) -> bool:
    """Whether a token with ``scopes`` may serve one API call only (Number Verification)."""
    return any(s.startswith(SINGLE_USE_SCOPE_PREFIX) for s in scopes)


class Authenticator:
    def __init__(self, engine: Engine, issuer: AccessTokenIssuer, jti_store: JtiStore,
                 clock: Clock, *, issuer_url: str, strict_audience: bool,
                 admin_token: str | None) -> None:
        self._engine = engine
        self._issuer = issuer
        self._jti_store = jti_store
        self._clock = clock
        self.issuer_url = issuer_url
        self.token_url = f"{issuer_url}/oauth2/token"
        self._strict_audience = strict_audience
        self._admin_token = admin_token
        self._organizers: dict[str, tuple[datetime, OrganizerRecord]] = {}

    def forget(self, name: str) -> None:
        """Drop a cached organizer after its registration changed."""
        self._organizers.pop(name, None)

    def organizer_by_name(self, name: str) -> OrganizerRecord | None:
        """The organizer's registration as read from the database at most
        :data:`REGISTRATION_FRESH_FOR` ago: a key, scope or status changed by another replica
        or the CLI takes effect within that time (this replica's admin API forgets at once)."""
        now = self._clock.now()
        known = self._organizers.get(name)
        if known is not None and timedelta(0) <= now - known[0] < REGISTRATION_FRESH_FOR:
            return known[1]
        try:
            record = organizers.find(self._engine, name)
        except NotFound:
            self._organizers.pop(name, None)
            return None
        self._organizers[name] = (now, record)
        return record

    def _key_of(self, client_id: str) -> PublicKey | None:
        record = self.organizer_by_name(client_id)
        return record.public_key if record is not None and record.active else None

    def granted_scope(self, client_id: str, requested: str | None) -> str:
        """The scope a request for ``requested`` gets: refused if any is not registered."""
        record = self.organizer_by_name(client_id)
        allowed = record.scopes if record is not None else frozenset()
        if not requested:
            wanted = {IDENTIFICATION_SCOPE} if IDENTIFICATION_SCOPE in allowed else set(allowed)
        else:
            wanted = set(requested.split())
        refused = sorted(wanted - allowed)
        if refused or not wanted:
            raise OAuthError(OAuthErrorCode.INVALID_SCOPE,
                             f"scope not registered for this client: {' '.join(refused)}")
        return " ".join(sorted(wanted))

    def authenticate_client(self, form: Mapping[str, str]) -> str:
        """The client_id that a token request's ``private_key_jwt`` assertion proves, or
        ``invalid_client`` (RFC 7523 section 3.2), whatever the assertion's defect; a refusal
        is logged with the client_id claimed."""
        try:
            client_id = self._authenticate_client(form)
        except OAuthError as exc:
            log_refusal("client_assertion", exc.error.value, exc.message,
                        form.get("client_id") or claimed_issuer(form.get("client_assertion")))
            raise
        note_organizer(client_id)
        return client_id

    def _authenticate_client(self, form: Mapping[str, str]) -> str:
        invalid = OAuthErrorCode.INVALID_CLIENT
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(invalid, "private_key_jwt is required: client_assertion_type "
                             f"must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion")
        if not assertion:
            raise OAuthError(invalid, "client_assertion is missing")
        try:
            client_id = verify_client_assertion(
                assertion, issuer=self.issuer_url,
                token_endpoint=None if self._strict_audience else self.token_url,
                lookup_key=self._key_of, jti_store=self._jti_store, clock=self._clock)
        except Unauthenticated as exc:
            raise OAuthError(invalid, exc.message) from exc
        if form.get("client_id") not in (None, client_id):
            raise OAuthError(invalid, "client_id does not match the assertion")
        return client_id

    def organizer(self, authorization: str | None, scope: str = IDENTIFICATION_SCOPE
                  ) -> OrganizerRecord:
        """The organizer an ``Authorization: Bearer`` header speaks for."""
        return self.caller(authorization, scope)[0]

    def caller(self, authorization: str | None, scope: str, *alternatives: str
               ) -> tuple[OrganizerRecord, TokenClaims]:
        """The organizer and the verified token of a request that needs ``scope`` (or one of
        the ``alternatives``, as an OpenAPI security requirement lists them). A refusal is
        logged, with the token's client when the token itself was valid."""
        record, claims = self._checked(authorization, scope, alternatives)
        self._spend(claims)
        return record, claims

    async def organizer_soon(self, authorization: str | None,
                             scope: str = IDENTIFICATION_SCOPE) -> OrganizerRecord:
        """:meth:`organizer` for the event loop: the token is checked in place (a signature
        and a registration read at most once per :data:`REGISTRATION_FRESH_FOR`); only a
        single-use token, whose ``jti`` is written to the shared store, goes to a thread."""
        record, claims = self._checked(authorization, scope, ())
        if single_use(claims.scope):
            await anyio.to_thread.run_sync(self._spend, claims)
        return record

    def _checked(self, authorization: str | None, scope: str, alternatives: Iterable[str]
                 ) -> tuple[OrganizerRecord, TokenClaims]:
        try:
            claims = self._issuer.verify(bearer_token(authorization))
        except Unauthenticated as exc:
            log_refusal("access_token", exc.code, exc.message)
            raise
        try:
            record = self._registered(claims, scope, alternatives)
        except (Unauthenticated, PermissionDenied) as exc:
            log_refusal("access_token", exc.code, exc.message, claims.client_id)
            raise
        note_organizer(record.name)
        return record, claims

    def _registered(self, claims: TokenClaims, scope: str, alternatives: Iterable[str]
                    ) -> OrganizerRecord:
        record = self.organizer_by_name(claims.client_id)
        if record is None or not record.active:
            raise Unauthenticated("the token's organizer is not registered",
                                  code="INVALID_TOKEN")
        if claims.scope.isdisjoint((scope, *alternatives)):
            raise PermissionDenied(f"the access token does not grant scope {scope!r}",
                                   code="INSUFFICIENT_SCOPE")
        return record

    def _spend(self, claims: TokenClaims) -> None:
        if single_use(claims.scope) and not self._jti_store.remember(
                f"access-token:{claims.jti}", claims.expires_at):
            refused = Unauthenticated("the access token was used before: tokens with a "
                                      "Number Verification scope serve a single call",
                                      code="INVALID_TOKEN")
            log_refusal("access_token", refused.code, refused.message, claims.client_id)
            raise refused

    def admin(self, authorization: str | None) -> None:
        """Accept only the operator staff's admin token (compared in constant time); a
        refusal is logged."""
        try:
            if self._admin_token is None:
                raise PermissionDenied("the admin API is disabled: no admin token is "
                                       "configured", code="ADMIN_DISABLED")
            given = bearer_token(authorization)
            if not hmac.compare_digest(given.encode(), self._admin_token.encode()):
                raise Unauthenticated("the admin token is not valid", code="INVALID_TOKEN")
        except (Unauthenticated, PermissionDenied) as exc:
            log_refusal("admin_token", exc.code, exc.message)
            raise
