"""An organisation's key pair: Ed25519 (default) or ES256 (P-256), with its key id.

Private keys live in PEM files readable only by their owner; public keys travel as PEM or as
JWK JSON and are registered with the other side. The key id is the RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from joserfc.jwk import ECKey, OKPKey

from numident.errors import InvalidInput

KeyKind = Literal["Ed25519", "ES256"]
JoseKey = OKPKey | ECKey
ALGORITHMS = ("Ed25519", "ES256")
"""JWS algorithms accepted anywhere in numident; ``none`` and HMAC are never among them."""


@dataclass(frozen=True)
class PublicKey:
    jose: JoseKey
    kid: str
    algorithm: str
    """The JWS ``alg`` this key signs with: ``Ed25519`` or ``ES256``."""

    def public_jwk(self) -> dict[str, Any]:
        return {**self.jose.as_dict(private=False), "kid": self.kid, "alg": self.algorithm,
                "use": "sig"}

    @property
    def http_signature_algorithm(self) -> str:
        return "ed25519" if self.algorithm == "Ed25519" else "ecdsa-p256-sha256"


@dataclass(frozen=True)
class PrivateKey(PublicKey):
    def public(self) -> PublicKey:
        return PublicKey(self.jose, self.kid, self.algorithm)

    def private_pem(self) -> bytes:
        return self.jose.as_pem(private=True)


def _algorithm_of(key: JoseKey) -> str:
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    raise InvalidInput("only Ed25519 and P-256 (ES256) keys are supported", code="INVALID_KEY")


def generate_key(kind: KeyKind = "Ed25519") -> PrivateKey:
    jose: JoseKey = OKPKey.generate_key("Ed25519") if kind == "Ed25519" \
        else ECKey.generate_key("P-256")
    return PrivateKey(jose, jose.thumbprint(), _algorithm_of(jose))


def _import(data: str | bytes | dict[str, Any]) -> JoseKey:
    for cls in (OKPKey, ECKey):
        try:
            return cls.import_key(data)
        except Exception:  # noqa: S112 - each key class refuses the other's keys in its own way
            continue
    raise InvalidInput("not an Ed25519 or P-256 key in PEM or JWK form", code="INVALID_KEY")


def load_public_key(source: str | Path) -> PublicKey:
    """A public key from PEM or JWK text, or from a file holding either."""
    text = _read(source)
    data: str | dict[str, Any] = text
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("public key JSON is not valid", code="INVALID_KEY") from exc
    jose = _import(data)
    if jose.is_private:
        jose = type(jose).import_key(jose.as_dict(private=False))
    kid = data.get("kid") if isinstance(data, dict) else None
    return PublicKey(jose, str(kid or jose.thumbprint()), _algorithm_of(jose))


def load_private_key(path: Path) -> PrivateKey:
    jose = _import(path.read_bytes())
    if not jose.is_private:
        raise InvalidInput(f"{path} holds no private key", code="INVALID_KEY")
    return PrivateKey(jose, jose.thumbprint(), _algorithm_of(jose))


def save_private_key(key: PrivateKey, path: Path) -> None:
    """Write the key as PEM, readable and writable by its owner only (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_pem())
    path.chmod(0o600)


def save_public_key(key: PublicKey, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key.public_jwk(), indent=2) + "\n", encoding="utf-8")


def ensure_private_key(path: Path, kind: KeyKind = "Ed25519") -> PrivateKey:
    """Load the key at ``path``, creating it (and its public JWK beside it) on first use."""
    if path.exists():
        return load_private_key(path)
    key = generate_key(kind)
    save_private_key(key, path)
    save_public_key(key, path.with_suffix(".pub.json"))
    return key


def _read(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8")
    stripped = source.strip()
    if stripped.startswith(("{", "-----BEGIN")):
        return stripped
    candidate = Path(stripped)
    if candidate.is_file():
        return candidate.read_text(encoding="utf-8")
    raise InvalidInput("public key is neither PEM, JWK, nor a readable file",
                       code="INVALID_KEY")
