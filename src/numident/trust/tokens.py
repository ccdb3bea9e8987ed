"""Short-lived OAuth2 access tokens that a gateway issues and verifies (JWT, RFC 9068 profile).

The gateway signs tokens with its own key, so it alone can verify them. Verification runs on
every API request: a bounded LRU cache maps token strings whose signature and claims were
already checked to their claims. Expiry is checked again on every use, so the cache never
extends a token's life; only valid tokens are cached, so garbage cannot evict them.

Refusals are :class:`~numident.errors.Unauthenticated` with code ``INVALID_TOKEN`` (malformed,
forged, another issuer or audience) or ``TOKEN_EXPIRED``.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from joserfc import jwt
from joserfc.errors import JoseError

from numident.client.keys import PrivateKey
from numident.core.clock import Clock
from numident.errors import Unauthenticated

AT_JWT_TYP = "at+jwt"  # RFC 9068: tells access tokens apart from other JWTs


@dataclass(frozen=True)
class IssuedToken:
    """A token response (RFC 6749 section 5.1); ``expires_in`` is in seconds."""

    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth2 token type, not a secret


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token grants: the client, its scopes, and until when."""

    client_id: str
    scope: frozenset[str]
    expires_at: datetime
    jti: str
    phone_number: str | None = None
    """Set on three-legged tokens: the subscriber the token speaks for."""
    amr: frozenset[str] = frozenset()
    """How that subscriber was authenticated (RFC 8176 values, ``network``, ``sim``...)."""


class AccessTokenIssuer:
    """Issues and verifies the gateway's access tokens. Thread-safe."""

    def __init__(self, key: PrivateKey, *, issuer: str, audience: str, lifetime: int = 600,
                 clock: Clock, cache_size: int = 10_000) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime
        self._clock = clock
        self._cache: OrderedDict[str, TokenClaims] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def issue(self, client_id: str, scope: str, *, phone_number: str | None = None,
              amr: Sequence[str] = (), lifetime: int | None = None) -> IssuedToken:
        """A token for ``client_id`` with the space-separated ``scope``, valid ``lifetime``
        seconds (at most the issuer's own lifetime; the issuer's lifetime when None).

        A three-legged token also names the subscriber (``phone_number``, which becomes its
        ``sub``) and how the subscriber was authenticated (``amr``).
        """
        now = int(self._clock.now().timestamp())
        seconds = self._lifetime if lifetime is None else min(lifetime, self._lifetime)
        claims: dict[str, object] = {
            "iss": self._issuer, "sub": phone_number or client_id, "aud": self._audience,
            "iat": now, "exp": now + seconds, "jti": str(uuid.uuid4()), "scope": scope,
            "client_id": client_id}
        if phone_number is not None:
            claims.update(phone_number=phone_number, amr=list(amr))
        token = jwt.encode({"alg": self._key.algorithm, "kid": self._key.kid,
                            "typ": AT_JWT_TYP}, claims, self._key.jose,
                           algorithms=[self._key.algorithm])
        return IssuedToken(token, seconds, scope)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid, unexpired token; ``INVALID_TOKEN`` or ``TOKEN_EXPIRED``."""
        with self._lock:
            claims = self._cache.get(token)
            if claims is not None:
                self._cache.move_to_end(token)
        if claims is None:
            # Outside the lock: the signature check is the slow part and needs no shared state.
            claims = self._check(token)
            with self._lock:
                self._cache[token] = claims
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if claims.expires_at <= self._clock.now():
            with self._lock:
                self._cache.pop(token, None)
            raise Unauthenticated("the access token has expired", code="TOKEN_EXPIRED")
        return claims

    def _check(self, token: str) -> TokenClaims:
        invalid = Unauthenticated("the access token is not valid", code="INVALID_TOKEN")
        try:
            decoded = jwt.decode(token, self._key.jose, algorithms=[self._key.algorithm])
        except (JoseError, ValueError) as exc:
            raise invalid from exc
        claims = decoded.claims
        exp, client, jti, scope = (claims.get("exp"), claims.get("client_id"),
                                   claims.get("jti"), claims.get("scope", ""))
        number, amr = claims.get("phone_number"), claims.get("amr", [])
        if (decoded.header.get("typ") != AT_JWT_TYP
                or claims.get("iss") != self._issuer or claims.get("aud") != self._audience
                or type(exp) is not int or not isinstance(client, str) or not client
                or not isinstance(jti, str) or not isinstance(scope, str)
                or not (number is None or isinstance(number, str))
                or not isinstance(amr, list) or not all(isinstance(m, str) for m in amr)):
            raise invalid
        try:
            expires_at = datetime.fromtimestamp(exp, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise invalid from exc
        return TokenClaims(client, frozenset(scope.split()), expires_at, jti,
                           phone_number=number, amr=frozenset(amr))
