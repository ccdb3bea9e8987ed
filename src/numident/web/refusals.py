"""The log line of a refused authentication, the same on both servers.

One ``authentication refused`` warning per refusal, naming the ``check`` that refused
(``client_assertion`` at the token endpoint, ``access_token``, ``admin_token``,
``backend_token``, ``notice_signature`` at the messenger's notice intake), the stable
``reason`` code and its ``detail``, and the ``client_id`` the caller proved or claimed when
there is one. The secret presented (an assertion, a token) is never logged.
"""

from __future__ import annotations

import base64
import binascii
import json

import structlog

log = structlog.get_logger("numident.auth")

CLIENT_ID_LIMIT = 128


def log_refusal(check: str, reason: str, detail: str, client_id: str | None = None) -> None:
    """Log the refusal; a claimed ``client_id`` is the caller's text, so it is cut short."""
    log.warning("authentication refused", check=check, reason=reason, detail=detail,
                client_id=client_id[:CLIENT_ID_LIMIT] if client_id is not None else None)


def claimed_issuer(assertion: str | None) -> str | None:
    """The ``iss`` that an unverified JWT claims (for the log of its refusal only), or None
    when it has no readable one. Nothing of the signature or the other claims is kept."""
    parts = (assertion or "").split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer[:CLIENT_ID_LIMIT] if isinstance(issuer, str) else None
