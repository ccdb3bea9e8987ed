"""``GET /oauth2/authorize``: the front channel of the authorization-code flow.

The device itself opens this URL (the organizer's app redirects it here), so the gateway sees the
device's connection and asks the :class:`~numident.operator.authorization.NetworkSessionSource`
which line it is. Problems with the client or its redirect URI are answered here, with the
RFC 6749 section 5.2 body (``invalid_client`` 401, ``invalid_request`` 400): redirecting to an
unverified URI would make the gateway an open redirector. Every later problem goes back to the
client's redirect URI as RFC 6749 section 4.1.2.1 says.

A request whose scope has ``openid`` (OpenID Connect Core 1.0) gets an ID token beside the
access token when its code is redeemed; its ``nonce`` is kept with the code. ``openid`` needs no
registration: it grants no API, only the ID token.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from numident.operator import authorization
from numident.operator.api import authenticator, gateway
from numident.operator.oauth_errors import NO_STORE, OAuthError, OAuthErrorCode
from numident.operator.token_endpoint import OAUTH_ERROR, OPENID_SCOPE

MAX_NONCE = 512

router = APIRouter(tags=["auth"])


@router.get("/oauth2/authorize", status_code=302, operation_id="authorize",
            responses={400: {"description": "invalid_request", **OAUTH_ERROR},
                       401: {"description": "invalid_client", **OAUTH_ERROR}},
            summary="Authorization code for the subscriber of this device's connection")
def authorize(request: Request, response_type: str = "", client_id: str = "",
              redirect_uri: str = "", scope: str = "", state: str | None = None,
              code_challenge: str | None = None, code_challenge_method: str | None = None,
              nonce: str | None = None) -> RedirectResponse:
    auth = authenticator(request)
    record = auth.organizer_by_name(client_id)
    if record is None or not record.active:
        raise OAuthError(OAuthErrorCode.INVALID_CLIENT, "unknown client_id")
    if redirect_uri not in record.redirect_uris:
        raise OAuthError(OAuthErrorCode.INVALID_REQUEST,
                         "redirect_uri is not registered for this client")

    def back(error: OAuthErrorCode | None = None, description: str = "",
             **params: str) -> RedirectResponse:
        if error is not None:
            params.update(error=error.value, error_description=description)
        if state is not None:
            params["state"] = state
        parts = urlsplit(redirect_uri)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302,
                                headers=NO_STORE)

    if response_type != "code":
        return back(OAuthErrorCode.UNSUPPORTED_RESPONSE_TYPE,
                    "only response_type=code is supported")
    g = gateway(request)
    if code_challenge is None and g.settings.camara.require_pkce:
        return back(OAuthErrorCode.INVALID_REQUEST, "PKCE is required: send "
                    "code_challenge with code_challenge_method=S256")
    if code_challenge is not None and (code_challenge_method != "S256"
                                       or not authorization.valid_challenge(code_challenge)):
        return back(OAuthErrorCode.INVALID_REQUEST, "code_challenge must be an "
                    "S256 challenge (RFC 7636) with code_challenge_method=S256")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
        return back(OAuthErrorCode.INVALID_REQUEST,
                    f"nonce must have 1 to {MAX_NONCE} characters")
    requested = scope.split()
    openid = OPENID_SCOPE in requested
    resources = " ".join(s for s in requested if s != OPENID_SCOPE)
    try:
        granted = auth.granted_scope(client_id, resources or None)
    except OAuthError as exc:
        return back(exc.error, exc.message)
    if openid:
        granted = f"{OPENID_SCOPE} {granted}"
    session = request.app.state.network_sessions.session_for(request)
    if session is None:
        return back(OAuthErrorCode.ACCESS_DENIED,
                    "the device's connection is not known to the network")
    code = authorization.create_code(
        g.engine, client_id=client_id, redirect_uri=redirect_uri, scope=granted,
        session=session, now=g.clock.now(), lifetime=g.settings.camara.authorization_code_seconds,
        code_challenge=code_challenge, nonce=nonce if openid else None)
    return back(code=code)
