"""Sink tokens at rest: the stored form, and what does not open."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from numident.sinks.tokens import SinkTokenCipher, UnreadableSinkToken
from numident.trust.holder_key import HolderKey

HOLDER = HolderKey(bytes(range(32)))
SUBSCRIPTION = "0b7c2a4e-6f51-4e0a-9d3b-1c2d3e4f5a6b"
TOKEN = "sink-token-5f1e"


def test_a_sealed_token_is_v1_base64url_of_nonce_and_aes_gcm_under_the_derived_key() -> None:
    """The stored form, recomputed from its definition: HKDF-SHA256 of the holder key with the
    sink token info, a 12-byte nonce, the subscription id as associated data."""
    stored = SinkTokenCipher.from_holder_key(HOLDER).seal(SUBSCRIPTION, TOKEN)
    version, _, text = stored.partition(":")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"numident sim swap sink token v1").derive(HOLDER.secret)
    assert version == "v1"
    assert "=" not in text
    assert len(data) == 12 + len(TOKEN) + 16
    assert AESGCM(key).decrypt(data[:12], data[12:], SUBSCRIPTION.encode()) == TOKEN.encode()
    assert key != HOLDER.secret


def test_sealing_twice_gives_different_values_that_both_open() -> None:
    cipher = SinkTokenCipher.from_holder_key(HOLDER)
    first, second = cipher.seal(SUBSCRIPTION, TOKEN), cipher.seal(SUBSCRIPTION, TOKEN)
    assert first != second
    assert cipher.open(SUBSCRIPTION, first) == cipher.open(SUBSCRIPTION, second) == TOKEN


@pytest.mark.parametrize(("stored", "reason"), [
    ("sink-token-5f1e", "not a v1 sealed sink token"),
    ("v2:AAAA", "not a v1 sealed sink token"),
    ("v1:AAAA", "the sealed sink token is too short"),
    ("v1:A", "the sealed sink token is not base64url")])
def test_a_value_that_is_not_a_sealed_token_does_not_open(stored: str, reason: str) -> None:
    with pytest.raises(UnreadableSinkToken, match=reason):
        SinkTokenCipher.from_holder_key(HOLDER).open(SUBSCRIPTION, stored)


def test_an_altered_moved_or_foreign_sealed_token_does_not_open() -> None:
    cipher = SinkTokenCipher.from_holder_key(HOLDER)
    stored = cipher.seal(SUBSCRIPTION, TOKEN)
    flipped = stored[:10] + ("B" if stored[10] != "B" else "C") + stored[11:]
    other_key = SinkTokenCipher.from_holder_key(HolderKey(bytes(32)))
    for opening in (lambda: cipher.open(SUBSCRIPTION, flipped),
                    lambda: cipher.open("another-subscription", stored),
                    lambda: other_key.open(SUBSCRIPTION, stored)):
        with pytest.raises(UnreadableSinkToken, match="altered, or sealed under another"):
            opening()


def test_the_key_is_not_shown() -> None:
    cipher = SinkTokenCipher.from_holder_key(HOLDER)
    assert cipher.key.hex() not in repr(cipher)
