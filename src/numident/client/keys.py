"""An organisation's key pair: Ed25519 (default) or ES256 (P-256), with its key id.

Private keys live in PEM files readable only by their owner (mode 0600); public keys travel
as PEM or as JWK JSON and are registered with the other side. The key id defaults to the
RFC 7638 thumbprint of the public key, so both sides derive the same id from the key alone.

JWS algorithm names: an Ed25519 key signs with ``Ed25519`` (RFC 9864, the fully specified
successor of ``EdDSA``), a P-256 key with ``ES256``. An Ed25519 key also accepts ``EdDSA``
(RFC 8037): both names make the very same signature with such a key, and ``EdDSA`` is what
most libraries emit (PyJWT, jwcrypto, node ``jose``, nimbus). :data:`JWS_REGISTRY` is the
joserfc registry that reads both without joserfc's deprecation warning, which is about
``EdDSA``'s meaning several curves; here the key fixes the curve.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm, JWSAlgModel
from joserfc.jwk import ECKey, OKPKey
from joserfc.jws import JWSRegistry

from numident.errors import InvalidInput

KeyKind = Literal["Ed25519", "ES256"]
JoseKey = OKPKey | ECKey
ALGORITHMS: tuple[str, ...] = ("EdDSA", "Ed25519", "ES256")
"""The only JWS ``alg`` values numident signs or accepts; ``none`` and HMAC never are."""
_ACCEPTED = {"Ed25519": ("Ed25519", "EdDSA"), "ES256": ("ES256",)}

_HTTP_SIGNATURE_ALGORITHMS = {"Ed25519": "ed25519", "ES256": "ecdsa-p256-sha256"}


@dataclass(frozen=True)
class PublicKey:
    """A verification key: the joserfc key, its ``kid`` and the JWS ``alg`` it is used with."""

    jose: JoseKey = field(repr=False)
    kid: str
    algorithm: str

    @property
    def accepted_algorithms(self) -> tuple[str, ...]:
        """The JWS ``alg`` values a signature by this key may carry."""
        return _ACCEPTED[self.algorithm]

    @property
    def interoperable_algorithm(self) -> str:
        """The ``alg`` that every maintained JOSE library verifies for this key: ``EdDSA``
        for Ed25519 (PyJWT knows no ``Ed25519``), ``ES256`` for P-256."""
        return "EdDSA" if self.algorithm == "Ed25519" else self.algorithm

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (never the private parameters), with ``kid`` and ``use``.

        ``alg`` is given for a P-256 key (``ES256``) and omitted for an Ed25519 key (RFC 7517
        makes it optional): naming either ``EdDSA`` or ``Ed25519`` there would make some
        libraries refuse tokens signed under the other name, and without it every library
        derives the algorithm from ``kty: OKP`` with ``crv: Ed25519`` (RFC 8037).
        """
        jwk = {**self.jose.as_dict(private=False), "kid": self.kid, "use": "sig"}
        if self.algorithm != "Ed25519":
            jwk["alg"] = self.algorithm
        return jwk

    def public_pem(self) -> bytes:
        return self.jose.as_pem(private=False)

    @property
    def http_signature_algorithm(self) -> str:
        """The RFC 9421 algorithm name: ``ed25519`` or ``ecdsa-p256-sha256``."""
        return _HTTP_SIGNATURE_ALGORITHMS[self.algorithm]


@dataclass(frozen=True)
class PrivateKey(PublicKey):
    """A signing key; it is also a :class:`PublicKey` for its own signatures."""

    def public(self) -> PublicKey:
        """The same key without its private half: safe to hand to verifiers and registries."""
        return PublicKey(_public_only(self.jose), self.kid, self.algorithm)

    def private_pem(self) -> bytes:
        return self.jose.as_pem(private=True)


def generate_key(kind: KeyKind = "Ed25519", kid: str | None = None) -> PrivateKey:
    """A fresh key pair; ``kid`` defaults to the RFC 7638 thumbprint."""
    jose: JoseKey = (OKPKey.generate_key("Ed25519") if kind == "Ed25519"
                     else ECKey.generate_key("P-256"))
    return PrivateKey(jose, kid or jose.thumbprint(), _algorithm_of(jose))


def load_public_key(source: str | Path) -> PublicKey:
    """A public key from PEM or JWK text, or from a file holding either.

    A JWK's own ``kid`` is kept (the other side may have chosen it); otherwise the kid is
    the thumbprint. Private parameters, if someone pasted a private key, are dropped.
    Raises :class:`InvalidInput` (``INVALID_KEY``) for anything but Ed25519 or P-256.
    """
    text = _read(source)
    data: str | dict[str, Any] = text
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("public key JSON is not valid", code="INVALID_KEY") from exc
        if not isinstance(data, dict):
            raise InvalidInput("public key JSON must be a JWK object", code="INVALID_KEY")
    jose = _public_only(_import(data))
    kid = data.get("kid") if isinstance(data, dict) else None
    return PublicKey(jose, kid if isinstance(kid, str) and kid else jose.thumbprint(),
                     _algorithm_of(jose))


def load_private_key(path: Path, kid: str | None = None) -> PrivateKey:
    """The private key in a PEM file; PEM carries no kid, so it is the thumbprint by default."""
    jose = _import(path.read_bytes())
    if not jose.is_private:
        raise InvalidInput(f"{path} holds no private key", code="INVALID_KEY")
    return PrivateKey(jose, kid or jose.thumbprint(), _algorithm_of(jose))


def save_private_key(key: PrivateKey, path: Path) -> None:
    """Write the key as PEM, readable and writable by its owner only (mode 0600).

    The file is written beside its destination and renamed into place, so the key is never
    readable by others, not even briefly, and a crash never leaves half a key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600 whatever the umask.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.private_pem())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_secret(path: Path, nbytes: int = 32) -> str:
    """The random secret kept at ``path`` as hex text, created on first use.

    It is written owner-only (mode 0600) beside its destination and linked into place, which
    never replaces a file: when two processes create it at once, both end up reading the same
    secret.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file with mode 0600 whatever the umask.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(nbytes) + "\n")
            with contextlib.suppress(FileExistsError):  # a secret already there wins
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text(encoding="ascii").strip()


def save_public_key(key: PublicKey, path: Path,
                    encoding: Literal["jwk", "pem"] | None = None) -> None:
    """Write the public half as JWK JSON, or PEM; by default PEM only for a ``.pem`` path."""
    chosen = encoding or ("pem" if path.suffix == ".pem" else "jwk")
    path.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "pem":
        path.write_bytes(key.public_pem())
    else:
        path.write_text(json.dumps(key.public_jwk(), indent=2) + "\n", encoding="utf-8")


def ensure_private_key(path: Path, kind: KeyKind = "Ed25519") -> PrivateKey:
    """Load the key at ``path``, creating it (and its public JWK beside it) on first use."""
    if path.exists():
        return load_private_key(path)
    key = generate_key(kind)
    save_private_key(key, path)
    save_public_key(key, path.with_suffix(".pub.json"))
    return key


def _algorithm_of(key: JoseKey) -> str:
    if isinstance(key, OKPKey) and key.curve_name == "Ed25519":
        return "Ed25519"
    if isinstance(key, ECKey) and key.curve_name == "P-256":
        return "ES256"
    raise InvalidInput("only Ed25519 and P-256 (ES256) keys are supported", code="INVALID_KEY")


def _import(data: str | bytes | dict[str, Any]) -> JoseKey:
    key_classes: tuple[type[OKPKey] | type[ECKey], ...] = (OKPKey, ECKey)
    if isinstance(data, dict):
        # A JWK names its own type; picking the class from it gives a precise refusal.
        key_classes = tuple(c for c in key_classes if c.key_type == data.get("kty"))
    for key_class in key_classes:
        try:
            return key_class.import_key(data)
        except (JoseError, ValueError, TypeError):
            # PEM does not say which class reads it: the other class may.
            continue
    raise InvalidInput("not an Ed25519 or P-256 key in PEM or JWK form", code="INVALID_KEY")


def _public_only(key: JoseKey) -> JoseKey:
    if not key.is_private:
        return key
    return type(key).import_key(key.as_dict(private=False))


def _read(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8").strip()
    stripped = source.strip()
    if stripped.startswith(("{", "-----BEGIN")):
        return stripped
    candidate = Path(stripped)
    if candidate.is_file():
        return candidate.read_text(encoding="utf-8").strip()
    raise InvalidInput("public key is neither PEM, JWK, nor a readable file",
                       code="INVALID_KEY")


class _QuietEdDSA(EdDSAAlgorithm):
    """joserfc's ``EdDSA``, without the warning that the name could mean Ed448 as well: a
    verifier here allows it only for a registered Ed25519 key."""

    security_warning: str | None = None  # type: ignore[assignment]  # the base allows None


class _NumidentRegistry(JWSRegistry):
    algorithms: dict[str, JWSAlgModel] = {**JWSRegistry.algorithms,  # noqa: RUF012
                                          "EdDSA": _QuietEdDSA()}


JWS_REGISTRY: JWSRegistry = _NumidentRegistry(algorithms=ALGORITHMS)
"""The joserfc registry for numident's JWS: only :data:`ALGORITHMS`, ``EdDSA`` read quietly."""
