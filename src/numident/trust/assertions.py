"""Client authentication with ``private_key_jwt`` (RFC 7523 section 2.2, RFC 7521).

The organizer signs a short JWT (``iss`` = ``sub`` = its client_id, ``aud`` = the token
endpoint URL, ``exp``, a unique ``jti``) with its own key; the gateway verifies it with the
public key the organizer registered, and refuses any ``jti`` it has seen before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from joserfc import jws, jwt
from joserfc.errors import JoseError

from numident.core.clock import Clock
from numident.errors import Unauthenticated
from numident.trust.keys import ALGORITHMS, PrivateKey, PublicKey
from numident.trust.replay import JtiStore


def make_client_assertion(key: PrivateKey, client_id: str, token_endpoint_url: str,
                          clock: Clock, lifetime: int = 60) -> str:
    now = int(clock.now().timestamp())
    claims = {"iss": client_id, "sub": client_id, "aud": token_endpoint_url, "iat": now,
              "exp": now + lifetime, "jti": str(uuid.uuid4())}
    return jwt.encode({"alg": key.algorithm, "kid": key.kid}, claims, key.jose,
                      algorithms=list(ALGORITHMS))


def _peek(assertion: str) -> tuple[object, str | None]:
    """The header's ``alg`` and the unverified ``iss``: only to find which key to verify with."""
    try:
        compact = jws.extract_compact(assertion.encode())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise Unauthenticated("client assertion is not a JWT", code="INVALID_CLIENT") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return compact.protected.get("alg"), issuer if isinstance(issuer, str) else None


def verify_client_assertion(assertion: str, *, expected_audience: str,
                            lookup_key: Callable[[str], PublicKey | None], jti_store: JtiStore,
                            clock: Clock, max_lifetime: int = 300, leeway: int = 30) -> str:
    """Return the client_id an assertion proves, or raise :class:`Unauthenticated`.

    Codes: ``INVALID_CLIENT`` (malformed, unknown client, bad signature, iss != sub),
    ``INVALID_AUDIENCE``, ``ASSERTION_EXPIRED``, ``ASSERTION_REPLAYED``.
    """
    header_alg, client_id = _peek(assertion)
    if header_alg not in ALGORITHMS:
        raise Unauthenticated(f"algorithm {header_alg!r} is not accepted", code="INVALID_CLIENT")
    key = lookup_key(client_id) if client_id else None
    if key is None or client_id is None:
        raise Unauthenticated(f"unknown client {client_id!r}", code="INVALID_CLIENT")
    try:
        token = jwt.decode(assertion, key.jose, algorithms=[key.algorithm])
    except JoseError as exc:
        raise Unauthenticated("client assertion signature is not valid",
                              code="INVALID_CLIENT") from exc
    claims = token.claims
    if claims.get("sub") != client_id:
        raise Unauthenticated("client assertion iss and sub differ", code="INVALID_CLIENT")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if expected_audience not in audiences:
        raise Unauthenticated("client assertion is for another audience",
                              code="INVALID_AUDIENCE")
    now = clock.now().timestamp()
    exp, iat = claims.get("exp"), claims.get("iat", now)
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise Unauthenticated("client assertion needs numeric exp (and iat)",
                              code="INVALID_CLIENT")
    if exp + leeway < now:
        raise Unauthenticated("client assertion has expired", code="ASSERTION_EXPIRED")
    if exp - min(iat, now) > max_lifetime:
        raise Unauthenticated(f"client assertion may live at most {max_lifetime} s",
                              code="INVALID_CLIENT")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise Unauthenticated("client assertion has no jti", code="INVALID_CLIENT")
    expires = datetime.fromtimestamp(exp, clock.now().tzinfo) + timedelta(seconds=leeway)
    if not jti_store.remember(f"{client_id}:{jti}", expires):
        raise Unauthenticated("client assertion was used before", code="ASSERTION_REPLAYED")
    return client_id
