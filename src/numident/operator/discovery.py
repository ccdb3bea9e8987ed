"""What the gateway tells OAuth clients about itself: RFC 8414 server metadata, OpenID Connect
Discovery 1.0, and the JWKS (RFC 7517) of its signing key.

Both metadata documents are the same object, served at
``/.well-known/oauth-authorization-server`` and ``/.well-known/openid-configuration``, with the
issuer the gateway's access tokens and ID tokens carry. ``grant_types_supported`` is read from
the token endpoint's table of grants at each request; fields of further features (CIBA's
``backchannel_authentication_endpoint``, ``backchannel_token_delivery_modes_supported``,
``backchannel_user_code_parameter_supported``) go into :attr:`Discovery.extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from numident.client.keys import ALGORITHMS, PrivateKey
from numident.operator.token_endpoint import OPENID_SCOPE, TokenEndpoint

router = APIRouter(tags=["auth"])

SCOPES_SUPPORTED = (
    OPENID_SCOPE, "identification",
    "number-verification:verify", "number-verification:device-phone-number:read",
    "number-recycling:check", "sim-swap", "sim-swap:check", "sim-swap:retrieve-date",
    "sim-swap-subscriptions:org.camaraproject.sim-swap-subscriptions.v0.swapped:create",
    "sim-swap-subscriptions:read", "sim-swap-subscriptions:delete",
    "kyc-match:match", "kyc-tenure:check-tenure")
"""Every scope some operation of the gateway asks for (see the README's table), and openid."""


@dataclass
class Discovery:
    issuer: str
    key: PrivateKey
    tokens: TokenEndpoint
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields that further features add to the metadata."""

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "scopes_supported": list(SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": sorted(self.tokens.grants),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [self.key.interoperable_algorithm],
            "claims_supported": ["iss", "sub", "aud", "azp", "exp", "iat", "nonce", "amr"],
            **self.extra,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public().public_jwk()]}


def discovery(request: Request) -> Discovery:
    return request.app.state.discovery  # type: ignore[no-any-return]


@router.get("/.well-known/oauth-authorization-server",
            operation_id="getAuthorizationServerMetadata",
            summary="Authorization server metadata (RFC 8414)")
def oauth_metadata(request: Request) -> JSONResponse:
    return JSONResponse(discovery(request).metadata())


@router.get("/.well-known/openid-configuration", operation_id="getOpenIdConfiguration",
            summary="OpenID Provider metadata (OpenID Connect Discovery 1.0)")
def openid_configuration(request: Request) -> JSONResponse:
    return JSONResponse(discovery(request).metadata())


@router.get("/.well-known/jwks.json", include_in_schema=False)
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(discovery(request).jwks())
