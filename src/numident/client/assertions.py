"""The organizer's side of ``private_key_jwt`` (RFC 7523 section 2.2, RFC 7521).

:func:`make_client_assertion` signs the short JWT that proves the organizer to a gateway's token
endpoint; :func:`token_request_form` is the client-credentials request that carries it. The
gateway's side (verification, the one-use memory of ``jti``) is ``numident.trust.assertions``.
"""

from __future__ import annotations

import json
import uuid

from joserfc import jws, jwt
from joserfc.errors import JoseError

from numident.client.keys import PrivateKey
from numident.core.clock import Clock

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def make_client_assertion(key: PrivateKey, client_id: str, audience: str,
                          clock: Clock, lifetime: int = 60) -> str:
    """A signed client assertion for ``audience`` (the authorization server's issuer
    identifier, or its token endpoint URL), valid ``lifetime`` seconds from ``clock.now()``."""
    now = int(clock.now().timestamp())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
              "exp": now + lifetime, "jti": str(uuid.uuid4())}
    return jwt.encode({"alg": key.algorithm, "kid": key.kid, "typ": "JWT"}, claims, key.jose,
                      algorithms=[key.algorithm])


def token_request_form(assertion: str, scope: str | None = None,
                       client_id: str | None = None) -> dict[str, str]:
    """The form of a client-credentials token request authenticated by ``assertion``.

    ``client_id`` (optional in RFC 7523, sent for clarity in logs) defaults to the
    assertion's own ``iss``; ``scope`` is sent only when given.
    """
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    client = client_id or _issuer_of(assertion)
    if client:
        form["client_id"] = client
    if scope:
        form["scope"] = scope
    return form


def _issuer_of(assertion: str) -> str | None:
    # Our own assertion, read without verification only to name the client in the form.
    try:
        claims = json.loads(jws.extract_compact(assertion.encode("ascii")).payload)
    except (JoseError, ValueError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None
