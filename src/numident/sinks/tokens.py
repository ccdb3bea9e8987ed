"""Sink credentials at rest: a subscription's access token is stored sealed, never in clear.

The token lets whoever holds it POST events to the organizer's sink, so a copy of the database
alone must not yield it. It is sealed with AES-256-GCM under a key derived (HKDF-SHA256, an
``info`` of its own) from the installation's holder key (:mod:`numident.trust.holder_key`),
with a random 96-bit nonce per value and the subscription's id as associated data, so that a
sealed token copied onto another subscription does not open. It is kept as one text value,
``v1:`` and the URL-safe base64 (unpadded) of nonce and ciphertext, and opened only when an
event is sent.

Deriving the key from the holder key rather than keeping a second secret means one secret to
configure, back up and share among replicas, which every gateway replica needs already; HKDF
with a distinct ``info`` makes the two keys independent, so neither use helps attack the
other. Changing the holder key therefore also makes the stored sink tokens unreadable: their
events fail (:class:`UnreadableSinkToken`) until dead-lettered, and organizers subscribe again.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from numident.trust.holder_key import HolderKey

VERSION = "v1"
NONCE_BYTES = 12
_TAG_BYTES = 16
_INFO = b"numident sim swap sink token v1"


class UnreadableSinkToken(ValueError):
    """A stored sink token that does not open: altered, or sealed under another key."""


@dataclass(frozen=True)
class SinkTokenCipher:
    """Seals and opens sink tokens under one 256-bit key."""

    key: bytes = field(repr=False)

    @classmethod
    def from_holder_key(cls, holder: HolderKey) -> SinkTokenCipher:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
        return cls(hkdf.derive(holder.secret))

    def seal(self, subscription_id: str, token: str) -> str:
        """``token`` sealed for the subscription ``subscription_id``, as stored."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, token.encode(), subscription_id.encode())
        return f"{VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, subscription_id: str, stored: str) -> str:
        """The token ``stored`` holds for ``subscription_id``; UnreadableSinkToken if none."""
        version, _, text = stored.partition(":")
        if version != VERSION:
            raise UnreadableSinkToken(f"not a {VERSION} sealed sink token")
        try:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise UnreadableSinkToken("the sealed sink token is not base64url") from exc
        if len(data) < NONCE_BYTES + _TAG_BYTES:
            raise UnreadableSinkToken("the sealed sink token is too short")
        try:
            token = AESGCM(self.key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:],
                                             subscription_id.encode())
        except InvalidTag as exc:
            raise UnreadableSinkToken("the sink token does not open: altered, or sealed "
                                      "under another holder key") from exc
        return token.decode()
