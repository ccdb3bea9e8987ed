"""Short-lived OAuth2 access tokens that a gateway issues and verifies (JWT, RFC 9068 style).

Verification runs on every API request, so a bounded cache remembers tokens whose signature
was already checked; expiry is checked again on every use, so the cache never extends a token.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from joserfc import jwt
from joserfc.errors import JoseError

from numident.core.clock import Clock
from numident.errors import Unauthenticated
from numident.trust.keys import PrivateKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth2 token type, not a secret


@dataclass(frozen=True)
class TokenClaims:
    client_id: str
    scope: frozenset[str]
    expires_at: datetime
    jti: str


class AccessTokenIssuer:
    def __init__(self, key: PrivateKey, *, issuer: str, audience: str, lifetime: int = 600,
                 clock: Clock, cache_size: int = 10_000) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime
        self._clock = clock
        self._cache: OrderedDict[str, TokenClaims] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, client_id: str, scope: str) -> IssuedToken:
        now = int(self._clock.now().timestamp())
        claims = {"iss": self._issuer, "sub": client_id, "aud": self._audience, "iat": now,
                  "exp": now + self._lifetime, "jti": str(uuid.uuid4()), "scope": scope,
                  "client_id": client_id}
        token = jwt.encode({"alg": self._key.algorithm, "kid": self._key.kid,
                            "typ": "at+jwt"}, claims, self._key.jose,
                           algorithms=[self._key.algorithm])
        return IssuedToken(token, self._lifetime, scope)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; ``INVALID_TOKEN`` or ``TOKEN_EXPIRED`` otherwise."""
        claims = self._cache.get(token)
        if claims is None:
            claims = self._check(token)
            self._cache[token] = claims
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if claims.expires_at <= self._clock.now():
            self._cache.pop(token, None)
            raise Unauthenticated("the access token has expired", code="TOKEN_EXPIRED")
        return claims

    def _check(self, token: str) -> TokenClaims:
        try:
            decoded = jwt.decode(token, self._key.jose, algorithms=[self._key.algorithm])
        except (JoseError, ValueError) as exc:
            raise Unauthenticated("the access token is not valid", code="INVALID_TOKEN") from exc
        claims = decoded.claims
        exp, sub, jti = claims.get("exp"), claims.get("sub"), claims.get("jti")
        if (claims.get("iss") != self._issuer or claims.get("aud") != self._audience
                or not isinstance(exp, int) or not isinstance(sub, str)
                or not isinstance(jti, str)):
            raise Unauthenticated("the access token is not valid", code="INVALID_TOKEN")
        return TokenClaims(sub, frozenset(str(claims.get("scope", "")).split()),
                           datetime.fromtimestamp(exp, UTC), jti)


def token_request_form(assertion: str, scope: str | None = None,
                       client_id: str | None = None) -> dict[str, str]:
    """The form of a client-credentials token request authenticated by ``assertion``."""
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}
    if client_id:
        form["client_id"] = client_id
    if scope:
        form["scope"] = scope
    return form
