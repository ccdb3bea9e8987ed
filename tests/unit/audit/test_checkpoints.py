"""Checkpoints are JWTs any JOSE library verifies, and a forged one is refused with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt as pyjwt
import pytest

from numident.audit.checkpoints import InvalidCheckpoint, key_lookup, read, sign_checkpoint
from numident.client.keys import generate_key

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEAD = "ab" * 32


@pytest.mark.parametrize("kind", ["Ed25519", "ES256"])
def test_a_checkpoint_reads_back_with_the_signing_key(kind: str) -> None:
    key = generate_key(kind)  # type: ignore[arg-type]
    token = sign_checkpoint(key, "operator", 42, HEAD, NOW)
    kid, claims = read(token, key_lookup(key.public()), "operator")
    assert kid == key.kid
    assert claims == {"log": "operator", "seq": 42, "hash": HEAD,
                      "iat": int(NOW.timestamp()), "signedAt": "2026-12-01T12:00:00.000000Z"}


def test_pyjwt_verifies_a_checkpoint_with_the_published_key() -> None:
    """A third-party library checks it from the JWK alone (what the README shows)."""
    key = generate_key()
    token = sign_checkpoint(key, "operator", 1, HEAD, NOW)
    public = pyjwt.PyJWK(key.public_jwk(), algorithm="EdDSA")
    claims = pyjwt.decode(token, public, algorithms=["EdDSA"])
    assert (claims["seq"], claims["hash"]) == (1, HEAD)


def test_a_checkpoint_of_another_key_is_refused() -> None:
    token = sign_checkpoint(generate_key(), "operator", 1, HEAD, NOW)
    with pytest.raises(InvalidCheckpoint, match="not the key given"):
        read(token, key_lookup(generate_key().public()), "operator")


def test_a_checkpoint_with_an_edited_payload_is_refused() -> None:
    """Changing the signed hash and keeping the signature fails the signature check."""
    key = generate_key()
    header, payload, signature = sign_checkpoint(key, "operator", 1, HEAD, NOW).split(".")
    forged_payload = sign_checkpoint(key, "operator", 1, "cd" * 32, NOW).split(".")[1]
    with pytest.raises(InvalidCheckpoint, match="does not verify"):
        read(f"{header}.{forged_payload}.{signature}", key_lookup(key.public()), "operator")
    assert payload != forged_payload


def test_a_checkpoint_of_the_other_side_is_refused() -> None:
    key = generate_key()
    token = sign_checkpoint(key, "messenger", 1, HEAD, NOW)
    with pytest.raises(InvalidCheckpoint, match="operator chain"):
        read(token, key_lookup(key.public()), "operator")


def test_garbage_is_not_a_checkpoint() -> None:
    with pytest.raises(InvalidCheckpoint, match="compact JWS"):
        read("not a token", key_lookup(generate_key().public()), "operator")
