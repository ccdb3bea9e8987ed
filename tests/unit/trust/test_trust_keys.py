"""Key pairs: generation, kids, and their PEM and JWK files."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from numident.client.keys import (
    ALGORITHMS,
    PrivateKey,
    ensure_private_key,
    ensure_secret,
    generate_key,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from numident.errors import InvalidInput


def test_generated_keys_sign_with_their_fully_specified_algorithm() -> None:
    """Ed25519 keys use JWS alg Ed25519 (RFC 9864), P-256 keys ES256; both are allowed."""
    assert generate_key().algorithm == "Ed25519"
    assert generate_key("ES256").algorithm == "ES256"
    assert set(ALGORITHMS) == {"EdDSA", "Ed25519", "ES256"}


def test_kid_is_the_rfc7638_thumbprint_unless_chosen(key: PrivateKey) -> None:
    """Without an explicit kid, the kid is the thumbprint both sides can recompute."""
    assert key.kid == key.jose.thumbprint()
    assert generate_key(kid="operator-2026").kid == "operator-2026"


def test_public_jwk_never_contains_the_private_part(key: PrivateKey) -> None:
    """The exported JWK carries kid and use, and no ``d``."""
    jwk = key.public_jwk()
    assert "d" not in jwk
    assert (jwk["kid"], jwk["use"]) == (key.kid, "sig")
    assert jwk["kty"] == ("OKP" if key.algorithm == "Ed25519" else "EC")


def test_public_jwk_names_an_algorithm_only_where_it_is_unambiguous(key: PrivateKey) -> None:
    """An Ed25519 JWK omits ``alg`` (it verifies both EdDSA and Ed25519 signatures, RFC 8037
    with RFC 9864); a P-256 JWK says ES256."""
    jwk = key.public_jwk()
    if key.algorithm == "Ed25519":
        assert "alg" not in jwk
        assert jwk["crv"] == "Ed25519"
        assert key.accepted_algorithms == ("Ed25519", "EdDSA")
    else:
        assert jwk["alg"] == "ES256"
        assert key.accepted_algorithms == ("ES256",)


def test_private_key_file_is_readable_by_its_owner_only(key: PrivateKey, tmp_path: Path) -> None:
    """The PEM file has mode 0600 and loads back to the same key."""
    path = tmp_path / "keys" / "signing.pem"
    save_private_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_private_key(path)
    assert (loaded.kid, loaded.algorithm) == (key.kid, key.algorithm)
    assert loaded.public_jwk() == key.public_jwk()


def test_overwriting_a_loose_key_file_tightens_its_mode(tmp_path: Path) -> None:
    """An existing world-readable file at the path is replaced by a 0600 one."""
    path = tmp_path / "signing.pem"
    path.write_text("old")
    path.chmod(0o644)
    save_private_key(generate_key(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("suffix", [".pem", ".jwk"])
def test_public_key_round_trips_through_pem_and_jwk_files(
        key: PrivateKey, tmp_path: Path, suffix: str) -> None:
    """A public key saved as PEM or JWK loads back with the same key material and kid."""
    path = tmp_path / f"operator{suffix}"
    save_public_key(key, path)
    text = path.read_text()
    assert text.startswith("-----BEGIN PUBLIC KEY") if suffix == ".pem" else json.loads(text)
    loaded = load_public_key(path)
    assert loaded.public_jwk() == key.public_jwk()
    assert not loaded.jose.is_private


def test_public_key_loads_from_text_and_from_a_path_string(key: PrivateKey,
                                                            tmp_path: Path) -> None:
    """``load_public_key`` accepts PEM text, JWK text, or the name of a file holding either."""
    pem = key.public_pem().decode()
    path = tmp_path / "key.json"
    save_public_key(key, path)
    for source in (pem, json.dumps(key.public_jwk()), str(path)):
        assert load_public_key(source).kid == key.kid


def test_jwk_keeps_its_own_kid() -> None:
    """A kid chosen by the other side survives registration."""
    key = generate_key(kid="alpha-1")
    assert load_public_key(json.dumps(key.public_jwk())).kid == "alpha-1"


def test_a_pasted_private_jwk_is_reduced_to_its_public_half(key: PrivateKey) -> None:
    """Registering a private JWK by mistake keeps only the public key."""
    private_jwk = json.dumps(key.jose.as_dict(private=True))
    loaded = load_public_key(private_jwk)
    assert not loaded.jose.is_private
    assert "d" not in loaded.public_jwk()


def test_public_of_a_private_key_holds_no_private_part(key: PrivateKey) -> None:
    """``PrivateKey.public()`` is safe to hand out."""
    public = key.public()
    assert not public.jose.is_private
    assert public.public_jwk() == key.public_jwk()


def test_key_repr_does_not_show_key_material(key: PrivateKey) -> None:
    """Logging a key shows its kid and algorithm, not the key object."""
    assert repr(key) == f"PrivateKey(kid={key.kid!r}, algorithm={key.algorithm!r})"


@pytest.mark.parametrize("source", [
    "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----",
    '{"kty": "oct", "k": "c2VjcmV0"}',
    '{"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}',
    "[1, 2]",
    "not-a-file-nor-a-key",
])
def test_unsupported_or_garbled_public_keys_are_refused(source: str) -> None:
    """Anything but an Ed25519 or P-256 key is refused with INVALID_KEY."""
    with pytest.raises(InvalidInput) as refused:
        load_public_key(source)
    assert refused.value.code == "INVALID_KEY"


def test_rsa_keys_are_refused() -> None:
    """RSA is not among numident's algorithms, even from a well-formed PEM file."""
    public = rsa.generate_private_key(65537, 2048).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(InvalidInput) as refused:
        load_public_key(pem)
    assert refused.value.code == "INVALID_KEY"


def test_a_public_key_file_is_not_a_private_key(key: PrivateKey, tmp_path: Path) -> None:
    """Loading a private key from a file holding only a public key is refused."""
    path = tmp_path / "public.pem"
    save_public_key(key, path)
    with pytest.raises(InvalidInput) as refused:
        load_private_key(path)
    assert refused.value.code == "INVALID_KEY"


def test_ensure_private_key_creates_once_then_reuses(tmp_path: Path) -> None:
    """The first call creates the key and its public JWK; later calls load the same key."""
    path = tmp_path / "gateway.pem"
    first = ensure_private_key(path, "ES256")
    second = ensure_private_key(path)
    assert (second.kid, second.algorithm) == (first.kid, "ES256")
    assert load_public_key(tmp_path / "gateway.pub.json").kid == first.kid


def test_a_secret_is_created_owner_only_once_and_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret"
    first = ensure_secret(path)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary left
    path.write_text("already-there\n", encoding="ascii")
    assert ensure_secret(path) == "already-there"
