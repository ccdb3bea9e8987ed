"""OpenID Connect ID tokens for the authorization-code flow (OpenID Connect Core 1.0).

When a three-legged flow asks for ``openid``, the token response carries an ID token signed
with the gateway's key: ``iss`` the issuer identifier, ``aud`` the client, ``nonce`` echoed
from the authorization request, ``amr`` how the network authenticated the line.

``sub`` is a pairwise identifier (Core section 8.1): HMAC-SHA256, under a key derived from the
installation's holder key, of the organizer and the line. Each organizer sees the same
subscriber under its own stable ``sub``; no two organizers can correlate theirs, and no ``sub``
reveals the phone number. Replicas share the holder key, so they agree on every ``sub``.

The ``alg`` is ``EdDSA`` for an Ed25519 gateway key (``ES256`` for a P-256 one): the name
every relying-party library verifies (PyJWT knows no ``Ed25519``).
"""

from __future__ import annotations

import base64
import hmac

from joserfc import jwt

from numident.client.keys import JWS_REGISTRY, PrivateKey
from numident.core.clock import Clock

ID_TOKEN_LIFETIME = 300
_PAIRWISE_LABEL = b"numident pairwise subject key"


class IdTokenIssuer:
    def __init__(self, key: PrivateKey, *, issuer: str, holder_secret: bytes, clock: Clock,
                 lifetime: int = ID_TOKEN_LIFETIME) -> None:
        self._key = key
        self._issuer = issuer
        self._pairwise_key = hmac.digest(holder_secret, _PAIRWISE_LABEL, "sha256")
        self._clock = clock
        self._lifetime = lifetime

    @property
    def algorithm(self) -> str:
        return self._key.interoperable_algorithm

    def subject(self, client_id: str, phone_number: str) -> str:
        """The pairwise ``sub`` of the line's subscriber for this organizer (43 characters)."""
        message = "\x1f".join((client_id, phone_number)).encode()
        digest = hmac.digest(self._pairwise_key, message, "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def issue(self, client_id: str, phone_number: str, *, nonce: str | None,
              amr: tuple[str, ...]) -> str:
        now = int(self._clock.now().timestamp())
        claims: dict[str, object] = {
            "iss": self._issuer, "sub": self.subject(client_id, phone_number),
            "aud": client_id, "azp": client_id, "iat": now, "exp": now + self._lifetime,
            "amr": list(amr)}
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode({"alg": self.algorithm, "kid": self._key.kid, "typ": "JWT"}, claims,
                          self._key.jose, algorithms=[self.algorithm], registry=JWS_REGISTRY)
