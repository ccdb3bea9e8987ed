"""Known answers from RFC 9421: the Ed25519 example of Appendix B.2.6 with the B.1.4 key.

Our key loading and the library's ``ed25519`` algorithm must reproduce the RFC's signature
byte for byte (Ed25519 is deterministic) and verify it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from numident.client.keys import load_private_key, load_public_key

# RFC 9421 Appendix B.1.4, "test-key-ed25519".
PRIVATE_PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
PUBLIC_X = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
KEYID = "test-key-ed25519"

# RFC 9421 Appendix B.2.6.
COVERED = ("date", "@method", "@path", "@authority", "content-type", "content-length")
CREATED = 1618884473
SIGNATURE_INPUT = ('sig-b26=("date" "@method" "@path" "@authority" "content-type" '
                   '"content-length");created=1618884473;keyid="test-key-ed25519"')
SIGNATURE = ("sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQ"
             "v5lIp5WPpBKRCw==:")


def rfc_request(**extra_headers: str) -> httpx2.Request:
    """The RFC's test request (Appendix B.2), without its Content-Digest, which B.2.6 omits."""
    return httpx2.Request("POST", "https://example.com/foo?param=Value&Pet=dog", headers={
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT", "Content-Type": "application/json",
        "Content-Length": "18", **extra_headers}, content=b'{"hello": "world"}')


def test_rfc_public_key_loads_with_its_published_coordinates() -> None:
    """The B.1.4 PEM public key is read as the Ed25519 key whose x the RFC's JWK gives."""
    key = load_public_key(PUBLIC_PEM)
    assert (key.algorithm, key.http_signature_algorithm) == ("Ed25519", "ed25519")
    assert key.public_jwk()["x"] == PUBLIC_X


def test_rfc_private_key_reproduces_the_published_signature(tmp_path: Path) -> None:
    """Signing the B.2.6 components with the B.1.4 key yields the RFC's exact headers."""
    path = tmp_path / "rfc.pem"
    path.write_bytes(PRIVATE_PEM)
    key = load_private_key(path, kid=KEYID)
    native = key.jose.private_key
    assert isinstance(native, Ed25519PrivateKey)
    request = rfc_request()
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={},
                                        private_keys={KEYID: native}))
    signer.sign(request, key_id=KEYID, label="sig-b26", include_alg=False,
                created=datetime.fromtimestamp(CREATED, UTC), covered_component_ids=COVERED)
    assert request.headers["Signature-Input"] == SIGNATURE_INPUT
    assert request.headers["Signature"] == SIGNATURE


def test_rfc_public_key_verifies_the_published_signature() -> None:
    """The RFC's own signature verifies with the B.1.4 public key as numident loads it."""
    key = load_public_key(PUBLIC_PEM)
    native = key.jose.public_key
    assert isinstance(native, Ed25519PublicKey)
    request = rfc_request(**{"Signature-Input": SIGNATURE_INPUT, "Signature": SIGNATURE})
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={KEYID: native},
                                        private_keys={}))
    [result] = verifier.verify(request, max_age=None)
    assert result.parameters == {"created": CREATED, "keyid": KEYID}
