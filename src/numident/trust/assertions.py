"""Client authentication with ``private_key_jwt`` (RFC 7523 section 2.2, RFC 7521).

The organizer signs a short JWT (``iss`` = ``sub`` = its client_id, ``aud``, ``exp``, a unique
``jti``, usually ``iat``) with its own key; the gateway verifies it with the public key the
organizer registered and refuses any ``jti`` it has seen before.

The audience (draft-ietf-oauth-rfc7523bis): the authorization server's issuer identifier as
the sole value of ``aud`` is accepted; so is the token endpoint URL, alone or in an array, as
RFC 7523 was published and as many clients still send it, unless the verifier is strict
(``token_endpoint=None``), which follows the draft: ``aud`` must be the issuer string.

The signature's ``alg`` must suit the registered key: ``Ed25519`` or ``EdDSA`` for an Ed25519
key, ``ES256`` for a P-256 key. Assertions may live up to ``max_lifetime`` (an hour by
default, which is what authlib and other libraries make by default).

Refusals are :class:`~numident.errors.Unauthenticated` with one of these codes:

``INVALID_CLIENT``      malformed or oversized, unknown client, algorithm not allowed, bad
                        signature, iss != sub, missing exp or jti, lifetime longer than allowed
``INVALID_AUDIENCE``    ``aud`` does not name this authorization server
``ASSERTION_EXPIRED``   ``exp`` (plus leeway) has passed
``ASSERTION_REPLAYED``  this client already used this ``jti``
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from numident.client.keys import ALGORITHMS, JWS_REGISTRY, PublicKey
from numident.core.clock import Clock
from numident.errors import Unauthenticated
from numident.trust.replay import JtiStore

MAX_ASSERTION_CHARS = 8192
"""Far above any real assertion (an ES256 one is about 500 characters): longer is refused
before it is parsed."""
MAX_LIFETIME = 3600


def verify_client_assertion(assertion: str, *, issuer: str, token_endpoint: str | None,
                            lookup_key: Callable[[str], PublicKey | None], jti_store: JtiStore,
                            clock: Clock, max_lifetime: int = MAX_LIFETIME,
                            leeway: int = 30) -> str:
    """The client_id that ``assertion`` proves, or :class:`Unauthenticated` (codes above).

    ``issuer`` is the authorization server's issuer identifier; ``token_endpoint`` its token
    endpoint URL, also accepted as audience, or None to accept the issuer alone.
    ``lookup_key(client_id)`` returns the client's registered key, or None for an unknown or
    disabled client. The ``jti`` is remembered in ``jti_store`` (namespaced by client) until
    ``exp + leeway``, after which ``exp`` alone refuses the assertion.
    """
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise Unauthenticated(f"client assertion is longer than {MAX_ASSERTION_CHARS} "
                              "characters", code="INVALID_CLIENT")
    header_alg, client_id = _peek(assertion)
    # Checked before any key is touched: "none", HMAC and RSA never reach the verifier.
    if header_alg not in ALGORITHMS:
        raise Unauthenticated(f"algorithm {header_alg!r} is not accepted", code="INVALID_CLIENT")
    key = lookup_key(client_id) if client_id else None
    if key is None or client_id is None:
        raise Unauthenticated(f"unknown client {client_id!r}", code="INVALID_CLIENT")
    if header_alg not in key.accepted_algorithms:
        raise Unauthenticated(f"algorithm {header_alg!r} does not suit the client's registered "
                              f"{key.algorithm} key", code="INVALID_CLIENT")
    try:
        claims = jwt.decode(assertion, key.jose, algorithms=key.accepted_algorithms,
                            registry=JWS_REGISTRY).claims
    except (JoseError, ValueError) as exc:
        raise Unauthenticated("client assertion signature is not valid",
                              code="INVALID_CLIENT") from exc
    if claims.get("sub") != client_id:
        raise Unauthenticated("client assertion iss and sub differ", code="INVALID_CLIENT")
    if not _meant_for(claims.get("aud"), issuer, token_endpoint):
        expected = issuer if token_endpoint is None else f"{issuer} or {token_endpoint}"
        raise Unauthenticated(f"client assertion audience must be {expected}",
                              code="INVALID_AUDIENCE")
    now = clock.now().timestamp()
    exp = _numeric(claims.get("exp"))
    iat = _numeric(claims.get("iat", now))
    if exp is None or iat is None:
        raise Unauthenticated("client assertion needs a numeric exp (and iat, if given)",
                              code="INVALID_CLIENT")
    if exp + leeway < now:
        raise Unauthenticated("client assertion has expired", code="ASSERTION_EXPIRED")
    # Bounding exp - iat alone would let a client pre-date iat; bounding from now as well
    # keeps every accepted assertion (and so every stored jti) short-lived.
    if exp - min(iat, now) > max_lifetime:
        raise Unauthenticated(f"client assertion may live at most {max_lifetime} s",
                              code="INVALID_CLIENT")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise Unauthenticated("client assertion has no jti", code="INVALID_CLIENT")
    expires = clock.now() + timedelta(seconds=exp + leeway - now)
    if not jti_store.remember(f"{client_id}:{jti}", expires):
        raise Unauthenticated("client assertion was used before", code="ASSERTION_REPLAYED")
    return client_id


def _meant_for(audience: object, issuer: str, token_endpoint: str | None) -> bool:
    if audience == issuer:
        return True
    if token_endpoint is None:
        return False
    # RFC 7519 allows an array; the issuer only counts as the sole member (rfc7523bis).
    return audience == [issuer] or audience == token_endpoint or (
        isinstance(audience, list) and token_endpoint in audience)


def _peek(assertion: str) -> tuple[object, str | None]:
    """The header's ``alg`` and the unverified ``iss``: only to choose the key to verify with."""
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
        claims: Any = json.loads(compact.payload)
    except (JoseError, ValueError) as exc:  # UnicodeError is a ValueError
        raise Unauthenticated("client assertion is not a JWT", code="INVALID_CLIENT") from exc
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return compact.protected.get("alg"), issuer if isinstance(issuer, str) else None


def _numeric(value: object) -> float | None:
    """A NumericDate, refusing booleans and the NaN/Infinity that Python's JSON accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
