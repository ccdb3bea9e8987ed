"""``POST /oauth2/token``: client authentication, then the grant the request names.

Every request authenticates its client with ``private_key_jwt`` (RFC 7523) first; the grant
is then looked up by ``grant_type`` in :attr:`TokenEndpoint.grants`, a table of
:data:`Grant` handlers (``client_credentials``, RFC 6749 section 4.4; ``authorization_code``,
section 4.1). A further grant is one more entry, added with :meth:`TokenEndpoint.add_grant`;
the server metadata lists whatever the table holds.

Refusals are :class:`~numident.operator.oauth_errors.OAuthError` (RFC 6749 section 5.2).
Access tokens that carry a Number Verification scope live at most 300 s (CAMARA); no grant
here issues refresh tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from numident.client.assertions import ASSERTION_TYPE
from numident.core.clock import Clock
from numident.operator.auth import Authenticator, single_use
from numident.operator.authorization import redeem_code
from numident.operator.id_tokens import IdTokenIssuer
from numident.operator.oauth_errors import NO_STORE, OAuthError, OAuthErrorCode
from numident.trust.tokens import AccessTokenIssuer

router = APIRouter(tags=["auth"])
SINGLE_USE_LIFETIME = 300
"""CAMARA Number Verification: its tokens "MUST not exceed an expiration time of 300 seconds"."""
OPENID_SCOPE = "openid"

Grant = Callable[[str, Mapping[str, str]], dict[str, Any]]
"""A grant: (the authenticated client_id, the request's form) -> the token response body."""


class TokenEndpoint:
    def __init__(self, engine: Engine, clock: Clock, authenticator: Authenticator,
                 issuer: AccessTokenIssuer, id_tokens: IdTokenIssuer) -> None:
        self._engine = engine
        self._clock = clock
        self._authenticator = authenticator
        self._issuer = issuer
        self._id_tokens = id_tokens
        self.grants: dict[str, Grant] = {}
        self.add_grant("client_credentials", self._client_credentials)
        self.add_grant("authorization_code", self._authorization_code)

    def add_grant(self, grant_type: str, grant: Grant) -> None:
        self.grants[grant_type] = grant

    def respond(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The token response to a request's form, or :class:`OAuthError`."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "grant_type is missing")
        grant = self.grants.get(grant_type)
        if grant is None:
            raise OAuthError(OAuthErrorCode.UNSUPPORTED_GRANT_TYPE,
                             f"grant_type must be one of {', '.join(sorted(self.grants))}")
        return grant(self._authenticator.authenticate_client(form), form)

    def access_token(self, client_id: str, scope: str, *, phone_number: str | None = None,
                     amr: tuple[str, ...] = ()) -> dict[str, Any]:
        """The response body of a new access token (RFC 6749 section 5.1); shorter-lived
        when the scope makes it single use."""
        lifetime = SINGLE_USE_LIFETIME if single_use(scope.split()) else None
        issued = self._issuer.issue(client_id, scope, phone_number=phone_number, amr=amr,
                                    lifetime=lifetime)
        return {"access_token": issued.access_token, "token_type": issued.token_type,
                "expires_in": issued.expires_in, "scope": issued.scope}

    def _client_credentials(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        scope = self._authenticator.granted_scope(client_id, form.get("scope"))
        return self.access_token(client_id, scope)

    def _authorization_code(self, client_id: str, form: Mapping[str, str]) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "code is missing")
        granted = redeem_code(self._engine, code, client_id=client_id,
                              redirect_uri=form.get("redirect_uri"), now=self._clock.now(),
                              code_verifier=form.get("code_verifier"))
        amr = (granted.authentication.value,)
        body = self.access_token(client_id, granted.scope, phone_number=granted.phone_number,
                                 amr=amr)
        if OPENID_SCOPE in granted.scope.split():
            body["id_token"] = self._id_tokens.issue(
                client_id, granted.phone_number, nonce=granted.nonce, amr=amr)
        return body


def token_endpoint(request: Request) -> TokenEndpoint:
    return request.app.state.token_endpoint  # type: ignore[no-any-return]


TOKEN_FORM = {"requestBody": {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object",
        "required": ["grant_type", "client_assertion_type", "client_assertion"],
        "properties": {
            "grant_type": {"type": "string",
                           "enum": ["client_credentials", "authorization_code",
                                    "urn:openid:params:grant-type:ciba"]},
            "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
            "client_assertion": {"type": "string", "description": "JWT signed with the "
                                 "organizer's registered key (EdDSA, Ed25519 or ES256): iss = "
                                 "sub = client_id, aud = the issuer identifier (or this "
                                 "endpoint's URL), exp, unique jti"},
            "client_id": {"type": "string"},
            "scope": {"type": "string", "default": "identification"},
            "code": {"type": "string", "description": "authorization_code: the code"},
            "redirect_uri": {"type": "string"},
            "code_verifier": {"type": "string", "description": "PKCE (RFC 7636)"},
            "auth_req_id": {"type": "string", "description": "the CIBA grant: the id "
                            "POST /oauth2/bc-authorize answered"},
        }}}}}}
OAUTH_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}}}}


class TokenAnswer(BaseModel):
    """The successful token response (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds")
    scope: str
    id_token: str | None = Field(None, description="With the openid scope (authorization "
                                 "code and CIBA)")


@router.post("/oauth2/token", openapi_extra=TOKEN_FORM, operation_id="requestAccessToken",
             response_model=TokenAnswer,
             responses={400: {"description": "RFC 6749 section 5.2 error", **OAUTH_ERROR},
                        401: {"description": "invalid_client", **OAUTH_ERROR}},
             summary="Access tokens for private_key_jwt clients (RFC 6749, RFC 7523)")
async def token(request: Request) -> JSONResponse:
    pairs = parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True)
    form = dict(pairs)
    if len(form) != len(pairs):  # RFC 6749 section 3.2
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST, "a parameter is given more than once")
    # The database and the signature checks block: off the event loop.
    body = await run_in_threadpool(token_endpoint(request).respond, form)
    return JSONResponse(body, headers=NO_STORE)
