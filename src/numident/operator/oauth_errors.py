"""The error responses of the OAuth endpoints (RFC 6749 section 5.2), in one place.

The token endpoint, and the authorization endpoint where it cannot redirect, answer an error
as ``{"error": CODE, "error_description": TEXT}`` with ``Cache-Control: no-store``, and
without a ``WWW-Authenticate`` challenge: an RFC 6750 Bearer challenge belongs to resource
servers, and clients (oauth4webapi among them) take it for one. ``invalid_client`` is 401,
every other code 400. The resource APIs keep the CAMARA error body of
:mod:`numident.web.errors`.

A grant raises :class:`OAuthError`; :func:`oauth_error_response` renders it. Codes that later
grants need (CIBA's ``authorization_pending``, ``slow_down``, ``expired_token``,
``access_denied``, and at its backchannel endpoint ``unknown_user_id``...) are members of
:class:`OAuthErrorCode` too, rendered the same way.
"""

from __future__ import annotations

import enum
import re

from starlette.requests import Request
from starlette.responses import JSONResponse

from numident.errors import NumidentError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""RFC 6749 sections 5.1 and 5.2: token responses and their errors are never cached."""
# The characters RFC 6749 allows in error_description; a description may quote client input.
_NOT_ALLOWED = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


class OAuthErrorCode(enum.StrEnum):
    INVALID_REQUEST = "invalid_request"
    INVALID_CLIENT = "invalid_client"
    INVALID_GRANT = "invalid_grant"
    UNAUTHORIZED_CLIENT = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    INVALID_SCOPE = "invalid_scope"
    UNSUPPORTED_RESPONSE_TYPE = "unsupported_response_type"  # section 4.1.2.1
    # OpenID Connect CIBA Core 1.0 section 11
    AUTHORIZATION_PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - an error code, not a secret
    ACCESS_DENIED = "access_denied"  # also section 4.1.2.1
    # OpenID Connect CIBA Core 1.0 section 13 (the backchannel authentication endpoint)
    UNKNOWN_USER_ID = "unknown_user_id"
    INVALID_BINDING_MESSAGE = "invalid_binding_message"
    TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"

    @property
    def status(self) -> int:
        if self is OAuthErrorCode.INVALID_CLIENT:
            return 401
        return 503 if self is OAuthErrorCode.TEMPORARILY_UNAVAILABLE else 400


class OAuthError(NumidentError):
    """A refusal at an OAuth endpoint; ``error`` is its RFC 6749 code, ``message`` the
    human-readable ``error_description``."""

    def __init__(self, error: OAuthErrorCode, description: str) -> None:
        super().__init__(description, code=error.value)
        self.error = error
        self.status = error.status

    def body(self) -> dict[str, object]:
        return {"error": self.error.value,
                "error_description": _NOT_ALLOWED.sub("?", self.message)}


async def oauth_error_response(_: Request, exc: Exception) -> JSONResponse:
    """The exception handler of :class:`OAuthError` (registered on the gateway app)."""
    assert isinstance(exc, OAuthError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=NO_STORE)
