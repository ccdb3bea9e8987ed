"""The gateway's security schemes, declared where the operations read their credentials.

Every credential is an ``Authorization: Bearer`` header; the schemes say how a caller obtains
it, and the documents list them per operation with the scopes it needs (any one requirement
suffices, as in the CAMARA documents):

* ``openId``: OpenID Connect discovery at ``/.well-known/openid-configuration``, the scheme the
  CAMARA documents name; it covers client credentials, the authorization code and CIBA
  (``urn:openid:params:grant-type:ciba`` after ``POST /oauth2/bc-authorize``).
* ``oAuth2ClientCredentials``: client credentials at ``/oauth2/token``, the client
  authenticated by ``private_key_jwt`` (RFC 7523), the only client authentication accepted.
* ``oAuth2AuthorizationCode``: ``/oauth2/authorize`` then ``/oauth2/token``, for a token of
  the subscriber of the device's connection.
* ``adminToken``: the operator staff's ``operator.admin_token``.

:func:`bearer` is the dependency that declares these and hands the header to the
authenticator, which alone decides (the schemes never refuse a request themselves);
:func:`authorized` declares them and asks the authenticator in the same dependency.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import Request, Security
from fastapi.openapi.models import OAuthFlows
from fastapi.security import HTTPBearer, OAuth2, OpenIdConnect

from numident.client.assertions import ASSERTION_TYPE

Scheme = OAuth2 | OpenIdConnect | HTTPBearer
Checked = TypeVar("Checked")

DISCOVERY_PATH = "/.well-known/openid-configuration"
AUTHORIZE_PATH = "/oauth2/authorize"
CIBA_PATH = "/oauth2/bc-authorize"

OPEN_ID = OpenIdConnect(
    openIdConnectUrl=DISCOVERY_PATH, scheme_name="openId", auto_error=False,
    description="OpenID Connect: client credentials, authorization code, or CIBA "
    f"(POST {CIBA_PATH}, then grant_type urn:openid:params:grant-type:ciba at /oauth2/token); "
    "clients authenticate with private_key_jwt (RFC 7523).")
CLIENT_CREDENTIALS = OAuth2(
    flows=OAuthFlows(clientCredentials={"tokenUrl": "/oauth2/token", "scopes": {}}),
    scheme_name="oAuth2ClientCredentials", auto_error=False,
    description="Client credentials (RFC 6749 section 4.4); the client authenticates with "
    f"private_key_jwt: client_assertion_type {ASSERTION_TYPE} and a JWT signed with its "
    "registered key (EdDSA, Ed25519 or ES256).")
AUTHORIZATION_CODE = OAuth2(
    flows=OAuthFlows(authorizationCode={"authorizationUrl": AUTHORIZE_PATH,
                                        "tokenUrl": "/oauth2/token", "scopes": {}}),
    scheme_name="oAuth2AuthorizationCode", auto_error=False,
    description="Authorization code with PKCE for the subscriber of the device's connection; "
    "the client authenticates at the token endpoint with private_key_jwt.")
ADMIN = HTTPBearer(scheme_name="adminToken", auto_error=False,
                   description="The operator staff's admin token (operator.admin_token).")



def bearer(*scopes: str, schemes: Sequence[Scheme] = (OPEN_ID,)
           ) -> Callable[..., Awaitable[str | None]]:
    """A dependency giving the ``Authorization`` header, declared in the documents as one
    security requirement per scheme and scope (any one suffices)."""
    return authorized(_header, *scopes, schemes=schemes)


def authorized(check: Callable[[Request, str | None], Awaitable[Checked]], *scopes: str,
               schemes: Sequence[Scheme] = (OPEN_ID,)) -> Callable[..., Awaitable[Checked]]:
    """A dependency giving ``await check(request, authorization)``, declared as
    :func:`bearer` declares it: the header is checked in the dependency that declares the
    schemes, one level of dependencies less per request than a check depending on
    :func:`bearer`."""
    return _declared([Security(scheme, scopes=[scope]) for scheme in schemes
                      for scope in scopes], check)


async def _header(_: Request, authorization: str | None) -> str | None:
    return authorization


def _declared(declarations: Sequence[Any],
              check: Callable[[Request, str | None], Awaitable[Checked]]
              ) -> Callable[..., Awaitable[Checked]]:
    # One coroutine with a parameter per declaration: FastAPI would run a plain function in a
    # worker thread, and resolves one level of dependencies faster than a chain of them.
    async def dependency(request: Request, **_: Any) -> Checked:
        return await check(request, request.headers.get("authorization"))

    dependency.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=Request),
        *(inspect.Parameter(f"declared_{n}", inspect.Parameter.KEYWORD_ONLY, default=d,
                            annotation=Any) for n, d in enumerate(declarations))])
    return dependency


admin_bearer = _declared([Security(ADMIN, scopes=[])], _header)
"""The dependency giving the ``Authorization`` header of the admin API (``adminToken``)."""
