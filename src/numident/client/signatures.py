"""Signed notices: HTTP Message Signatures (RFC 9421) over a Content-Digest (RFC 9530).

The operator signs ``@method``, ``@authority``, ``@path``, ``content-type`` and
``content-digest`` (sha-256 of the body) with its key, with the parameters ``created``,
``keyid``, ``alg`` and the tag ``numident-notice``. ``@authority`` + ``@path`` rather than
``@target-uri``: the receiver often sits behind a TLS-terminating proxy and sees
``http://`` where the sender wrote ``https://``; the scheme adds nothing to the binding,
and the receiver reconstructs host and path reliably. A receiver may require more covered
components (``also_covered``): a CloudEvent in binary mode carries its attributes in
``ce-*`` headers, which must then be signed too. ``docs/notices.md`` is the published profile.

The receiver checks the signature against the registered key, that ``created`` lies within
``max_age`` seconds in the past (and at most ``MAX_SKEW`` in the future), then the digest
against the body. A captured notice can therefore be replayed only inside that window, and
the receiver refuses a second notice with the same event id, so a replay has no effect.

Refusals are :class:`~numident.errors.Unauthenticated` with one of these codes:
``SIGNATURE_MISSING``, ``UNKNOWN_KEY``, ``SIGNATURE_INVALID``, ``SIGNATURE_EXPIRED``,
``DIGEST_MISMATCH``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.structures import CaseInsensitiveDict

from numident.client.keys import PrivateKey, PublicKey
from numident.core.clock import Clock
from numident.errors import Unauthenticated

TAG = "numident-notice"
LABEL = "notice"
COVERED = ("@method", "@authority", "@path", "content-type", "content-digest")
MAX_SKEW = 30
"""Seconds a signature's ``created`` may lie in the receiver's future (clock drift)."""

_ALGORITHMS: dict[str, Any] = {"ed25519": algorithms.ED25519,
                               "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256}


class _Message:
    """The request shape the library reads: ``method``, absolute ``url``, ``headers``."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = CaseInsensitiveDict(dict(headers))  # type: ignore[no-untyped-call]


class _ClockedVerifier(HTTPMessageVerifier):
    """The library's verifier with its wall-clock time checks left to us.

    The library compares ``created`` with ``datetime.now()``; numident reads time through its
    clock port, so :class:`NoticeVerifier` checks the time after the signature, with its
    own codes. Here only ``created`` is still required (the library checks its type).
    """

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        if "created" not in sig_input.params:
            raise InvalidSignature('the signature has no "created" parameter')


class NoticeSigner:
    """Signs outgoing notices with the operator's key.

    ``keyid`` defaults to the key's kid; ``now`` (a clock's ``now``) stamps ``created``.
    """

    def __init__(self, key: PrivateKey, keyid: str | None = None, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self._keyid = keyid or key.kid
        self._now = now or (lambda: datetime.now(UTC))
        self._signer = HTTPMessageSigner(
            signature_algorithm=_ALGORITHMS[key.http_signature_algorithm],
            key_resolver=MappingKeyResolver(public_keys={},
                                            private_keys={self._keyid: _signing_key(key)}))

    def sign(self, method: str, url: str, body: bytes, headers: dict[str, str]
             ) -> dict[str, str]:
        """Headers to add to the request: ``Content-Digest``, ``Signature-Input``, ``Signature``.

        ``headers`` must hold the ``Content-Type`` that will be sent; it is not modified.
        An existing ``Content-Digest`` is reused only if it matches ``body``.
        """
        if not any(name.lower() == "content-type" for name in headers):
            raise ValueError("a notice needs a Content-Type header to sign")
        message = _Message(method, url, headers)
        self._signer.sign(message, key_id=self._keyid, label=LABEL, tag=TAG, body=body,
                          created=self._now(), covered_component_ids=COVERED,
                          use_existing_digest=True)
        return {name: message.headers[name]
                for name in ("Content-Digest", "Signature-Input", "Signature")}


class NoticeVerifier:
    """Verifies incoming notices against the keys of registered operators."""

    def __init__(self, lookup_key: Callable[[str], PublicKey | None], clock: Clock,
                 max_age: int = 300) -> None:
        self._lookup = lookup_key
        self._clock = clock
        self._max_age = max_age

    def verify(self, method: str, url: str, headers: Mapping[str, str], body: bytes, *,
               also_covered: Sequence[str] = ()) -> str:
        """The ``keyid`` of a valid notice signature over this request (codes above).

        ``url`` is the absolute URL the sender addressed (scheme, host, port, path). The
        signature must cover ``COVERED`` and every component named in ``also_covered``.
        """
        message = _Message(method, url, headers)
        keyid = _notice_keyid(message.headers)
        key = self._lookup(keyid)
        if key is None:
            raise Unauthenticated(f"unknown signing key {keyid!r}", code="UNKNOWN_KEY")
        verifier = _ClockedVerifier(
            signature_algorithm=_ALGORITHMS[key.http_signature_algorithm],
            key_resolver=MappingKeyResolver(public_keys={keyid: _verification_key(key)},
                                            private_keys={}))
        try:
            results = verifier.verify(message, max_age=None, expect_tag=TAG,
                                      require_components=(*COVERED, *also_covered))
        except HTTPMessageSignaturesException as exc:
            raise Unauthenticated(f"notice signature refused: {exc}",
                                  code="SIGNATURE_INVALID") from exc
        now = self._clock.now().timestamp()
        for result in results:
            created, expires = result.parameters["created"], result.parameters.get("expires")
            if not isinstance(created, int) or not isinstance(expires, int | None):
                raise Unauthenticated("the signature times are not integers",
                                      code="SIGNATURE_INVALID")
            if created < now - self._max_age or (expires is not None and expires < now):
                raise Unauthenticated("the notice signature is too old",
                                      code="SIGNATURE_EXPIRED")
            if created > now + MAX_SKEW:
                raise Unauthenticated("the notice signature is dated in the future",
                                      code="SIGNATURE_EXPIRED")
        try:
            # The digest header itself is covered by the signature checked above.
            ContentDigest.verify(message.headers["content-digest"], body)
        except HTTPMessageSignaturesException as exc:
            raise Unauthenticated("the notice body does not match its Content-Digest",
                                  code="DIGEST_MISMATCH") from exc
        return keyid


def _notice_keyid(headers: Mapping[str, str]) -> str:
    """The ``keyid`` of the signature tagged ``numident-notice``; used only to find the key."""
    if "signature" not in headers or "signature-input" not in headers:
        raise Unauthenticated("the notice is not signed", code="SIGNATURE_MISSING")
    try:
        members: Any = http_sf.parse(headers["signature-input"].encode("ascii"),
                                     tltype="dictionary")
    except (ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        raise Unauthenticated("the Signature-Input header is malformed",
                              code="SIGNATURE_INVALID") from exc
    keyids = {params.get("keyid") for _, params in members.values()
              if isinstance(params, dict) and params.get("tag") == TAG}
    if not keyids:
        raise Unauthenticated(f"the notice carries no {TAG!r} signature",
                              code="SIGNATURE_MISSING")
    if len(keyids) != 1 or not isinstance(keyid := next(iter(keyids)), str):
        raise Unauthenticated("the notice signatures name no single keyid",
                              code="SIGNATURE_INVALID")
    return keyid


def _signing_key(key: PrivateKey) -> Ed25519PrivateKey | EllipticCurvePrivateKey:
    native = key.jose.private_key
    if not isinstance(native, Ed25519PrivateKey | EllipticCurvePrivateKey):
        raise TypeError(f"key {key.kid} cannot sign notices")
    return native


def _verification_key(key: PublicKey) -> Ed25519PublicKey | EllipticCurvePublicKey:
    native = key.jose.public_key
    if not isinstance(native, Ed25519PublicKey | EllipticCurvePublicKey):
        raise TypeError(f"key {key.kid} cannot verify notices")
    return native
