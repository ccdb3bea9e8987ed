"""``GET /oauth2/authorize``: the front channel of the authorization-code flow.

The device itself opens this URL (the organizer's app redirects it here), so the gateway sees the
device's connection and asks the :class:`~numident.operator.authorization.NetworkSessionSource`
which line it is. Problems with the client or its redirect URI are answered here (400 with the
error body: redirecting to an unverified URI would make the gateway an open redirector); every
later problem goes back to the client's redirect URI as RFC 6749 section 4.1.2.1 says.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from numident.errors import InvalidInput, Unauthenticated
from numident.operator import authorization, ciba
from numident.operator.api import ERRORS, authenticator, gateway
from numident.trust.keys import ALGORITHMS

router = APIRouter(tags=["auth"])


@router.get("/.well-known/oauth-authorization-server",
            summary="Authorization server metadata (RFC 8414)")
def metadata(request: Request) -> JSONResponse:
    base = gateway(request).notice_source
    return JSONResponse({
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials",
                                  ciba.GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "backchannel_authentication_endpoint": f"{base}/oauth2/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": False,
    })


@router.get("/oauth2/authorize", status_code=302, responses=ERRORS,
            summary="Authorization code for the subscriber of this device's connection")
def authorize(request: Request, response_type: str = "", client_id: str = "",
              redirect_uri: str = "", scope: str = "", state: str | None = None,
              code_challenge: str | None = None, code_challenge_method: str | None = None
              ) -> RedirectResponse:
    auth = authenticator(request)
    record = auth.organizer_by_name(client_id)
    if record is None or not record.active:
        raise Unauthenticated("unknown client_id", code="INVALID_CLIENT")
    if redirect_uri not in record.redirect_uris:
        raise InvalidInput("redirect_uri is not registered for this client",
                           code="INVALID_REDIRECT_URI")

    def back(**params: str) -> RedirectResponse:
        if state is not None:
            params["state"] = state
        parts = urlsplit(redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302,
                                headers={"Cache-Control": "no-store"})

    if response_type != "code":
        return back(error="unsupported_response_type",
                    error_description="only response_type=code is supported")
    g = gateway(request)
    if code_challenge is None and g.settings.camara.require_pkce:
        return back(error="invalid_request", error_description="PKCE is required: send "
                    "code_challenge with code_challenge_method=S256")
    if code_challenge is not None and (code_challenge_method != "S256"
                                       or not authorization.valid_challenge(code_challenge)):
        return back(error="invalid_request", error_description="code_challenge must be an "
                    "S256 challenge (RFC 7636) with code_challenge_method=S256")
    try:
        granted = auth.granted_scope(client_id, scope or None)
    except InvalidInput as exc:
        return back(error="invalid_scope", error_description=exc.message)
    session = request.app.state.network_sessions.session_for(request)
    if session is None:
        return back(error="access_denied",
                    error_description="the device's connection is not known to the network")
    code = authorization.create_code(
        g.engine, client_id=client_id, redirect_uri=redirect_uri, scope=granted,
        session=session, now=g.clock.now(), lifetime=g.settings.camara.authorization_code_seconds,
        code_challenge=code_challenge)
    return back(code=code)
