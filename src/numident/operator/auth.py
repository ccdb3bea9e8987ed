"""Who is calling: organizers by OAuth2 access tokens, the operator's staff by an admin token.

Organizers obtain tokens at ``POST /oauth2/token`` authenticating with ``private_key_jwt``
(RFC 7523): by client credentials (RFC 6749 section 4.4, two-legged tokens) or by redeeming an
authorization code (section 4.1, three-legged tokens bound to the subscriber whose device's
connection asked for the code; see :mod:`numident.operator.authorization`). A token carries only
scopes registered for the organizer. Every refusal is a 401 with a stable code.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from sqlalchemy import Engine

from numident.core.clock import Clock
from numident.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from numident.operator import organizers
from numident.operator.authorization import redeem_code
from numident.operator.organizers import OrganizerRecord
from numident.trust.assertions import verify_client_assertion
from numident.trust.keys import PublicKey
from numident.trust.replay import JtiStore
from numident.trust.tokens import AccessTokenIssuer, IssuedToken, TokenClaims

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
IDENTIFICATION_SCOPE = "identification"


class Authenticator:
    def __init__(self, engine: Engine, issuer: AccessTokenIssuer, jti_store: JtiStore,
                 clock: Clock, token_url: str, admin_token: str | None) -> None:
        self._engine = engine
        self._issuer = issuer
        self._jti_store = jti_store
        self._clock = clock
        self.token_url = token_url
        self._admin_token = admin_token
        self._organizers: dict[str, OrganizerRecord] = {}

    def forget(self, name: str) -> None:
        """Drop a cached organizer after its registration changed."""
        self._organizers.pop(name, None)

    def organizer_by_name(self, name: str) -> OrganizerRecord | None:
        record = self._organizers.get(name)
        if record is None:
            try:
                record = organizers.find(self._engine, name)
            except NotFound:
                return None
            self._organizers[name] = record
        return record

    def _key_of(self, client_id: str) -> PublicKey | None:
        record = self.organizer_by_name(client_id)
        return record.public_key if record is not None and record.active else None

    def issue_token(self, form: Mapping[str, str]) -> IssuedToken:
        """Answer a token request (the form fields of RFC 6749 4.1.3 or 4.4, with RFC 7523)."""
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "authorization_code"):
            raise InvalidInput("grant_type must be client_credentials or authorization_code",
                               code="UNSUPPORTED_GRANT_TYPE")
        client_id = self._authenticate_client(form)
        if grant == "authorization_code":
            granted = redeem_code(self._engine, form.get("code") or "", client_id=client_id,
                                  redirect_uri=form.get("redirect_uri"),
                                  now=self._clock.now(),
                                  code_verifier=form.get("code_verifier"))
            return self._issuer.issue(client_id, granted.scope,
                                      phone_number=granted.phone_number,
                                      amr=[granted.authentication.value])
        return self._issuer.issue(client_id, self.granted_scope(client_id, form.get("scope")))

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
            raise InvalidInput(f"scope not registered for this client: {' '.join(refused)}",
                               code="INVALID_SCOPE")
        return " ".join(sorted(wanted))

    def authenticate_client(self, form: Mapping[str, str]) -> str:
        """The client a request's ``private_key_jwt`` assertion proves (CIBA's
        ``bc-authorize`` authenticates as the token endpoint does)."""
        return self._authenticate_client(form)

    def _authenticate_client(self, form: Mapping[str, str]) -> str:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise Unauthenticated(f"client_assertion_type must be {ASSERTION_TYPE}",
                                  code="INVALID_CLIENT")
        assertion = form.get("client_assertion")
        if not assertion:
            raise Unauthenticated("client_assertion is missing", code="INVALID_CLIENT")
        client_id = verify_client_assertion(
            assertion, expected_audience=self.token_url, lookup_key=self._key_of,
            jti_store=self._jti_store, clock=self._clock)
        if form.get("client_id") not in (None, client_id):
            raise Unauthenticated("client_id does not match the assertion",
                                  code="INVALID_CLIENT")
        return client_id

    def organizer(self, authorization: str | None, scope: str = IDENTIFICATION_SCOPE
                  ) -> OrganizerRecord:
        """The organizer an ``Authorization: Bearer`` header speaks for."""
        return self.caller(authorization, scope)[0]

    def caller(self, authorization: str | None, scope: str, *alternatives: str
               ) -> tuple[OrganizerRecord, TokenClaims]:
        """The organizer and the verified token of a request that needs ``scope`` (or one of
        the ``alternatives``, as an OpenAPI security requirement lists them)."""
        claims = self._issuer.verify(_bearer(authorization))
        record = self.organizer_by_name(claims.client_id)
        if record is None or not record.active:
            raise Unauthenticated("the token's organizer is not registered",
                                  code="INVALID_TOKEN")
        if claims.scope.isdisjoint((scope, *alternatives)):
            raise PermissionDenied(f"the access token does not grant scope {scope!r}",
                                   code="INSUFFICIENT_SCOPE")
        return record, claims

    def admin(self, authorization: str | None) -> None:
        """Accept only the operator staff's admin token (compared in constant time)."""
        if self._admin_token is None:
            raise PermissionDenied("the admin API is disabled: no admin token is configured",
                                   code="ADMIN_DISABLED")
        given = _bearer(authorization)
        if not hmac.compare_digest(given.encode(), self._admin_token.encode()):
            raise Unauthenticated("the admin token is not valid", code="INVALID_TOKEN")


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("an Authorization: Bearer token is required",
                              code="MISSING_TOKEN")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'",
                              code="MISSING_TOKEN")
    return token.strip()
