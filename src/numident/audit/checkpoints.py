"""Signed checkpoints: the side's key vouches that entry ``seq`` of its chain had ``hash``.

A checkpoint is a JWT (a compact JWS, RFC 7515/7519) signed by the operator's key, the one
its JWKS publishes (on the messenger side, the organizer's key): header ``alg`` (``EdDSA``
for Ed25519, the name every JOSE library verifies, or ``ES256``), ``kid`` and ``typ: JWT``;
claims ``log`` (the side), ``seq``, ``hash``, ``iat`` and ``signedAt`` (RFC 3339). An export
adds a statement of the same kind with the period it covers (:mod:`numident.audit.bundle`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from numident.audit.chain import timestamp
from numident.client.keys import JWS_REGISTRY, PrivateKey, PublicKey

KeyLookup = Callable[[str], PublicKey | None]


class InvalidCheckpoint(Exception):
    """A checkpoint whose signature, key or claims do not hold; the text says which."""


def sign(key: PrivateKey, claims: Mapping[str, Any]) -> str:
    algorithm = key.interoperable_algorithm
    return jwt.encode({"alg": algorithm, "kid": key.kid, "typ": "JWT"}, dict(claims),
                      key.jose, algorithms=[algorithm], registry=JWS_REGISTRY)


def checkpoint_claims(side: str, seq: int, hash_: str, now: datetime) -> dict[str, Any]:
    return {"log": side, "seq": seq, "hash": hash_, "iat": int(now.timestamp()),
            "signedAt": timestamp(now)}


def sign_checkpoint(key: PrivateKey, side: str, seq: int, hash_: str, now: datetime) -> str:
    return sign(key, checkpoint_claims(side, seq, hash_, now))


def read(token: str, keys: KeyLookup, side: str) -> tuple[str, dict[str, Any]]:
    """The ``kid`` and claims of a checkpoint (or export statement) of ``side``'s chain
    signed by a key that ``keys`` knows by that ``kid``; raises :class:`InvalidCheckpoint`."""
    try:
        header = jws.extract_compact(token.strip().encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidCheckpoint("is not a compact JWS") from exc
    kid = header.get("kid")
    key = keys(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise InvalidCheckpoint(f"is signed by key {kid!r}, which is not the key given")
    try:
        claims = jwt.decode(token.strip(), key.jose, algorithms=key.accepted_algorithms,
                            registry=JWS_REGISTRY).claims
    except (JoseError, ValueError) as exc:
        raise InvalidCheckpoint(f"has a signature that key {kid!r} does not verify") from exc
    seq, hash_ = claims.get("seq"), claims.get("hash")
    if claims.get("log") != side or not isinstance(seq, int) or isinstance(seq, bool) \
            or seq < 1 or not isinstance(hash_, str) or len(hash_) != 64:
        raise InvalidCheckpoint(f"does not name an entry of the {side} chain: "
                                f"{json.dumps(claims)[:200]}")
    return kid, dict(claims)


def key_lookup(*keys: PublicKey) -> KeyLookup:
    by_kid = {k.kid: k for k in keys}
    return by_kid.get
