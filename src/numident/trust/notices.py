"""Signed notices: HTTP Message Signatures (RFC 9421) over a Content-Digest (RFC 9530).

The operator signs ``@method``, ``@target-uri``, ``content-type`` and ``content-digest`` with
its key, with ``created``, ``keyid`` and the tag ``numident-notice``. The receiver checks the
digest against the body, the signature against the registered key, and that ``created`` is
at most ``max_age`` old: a captured notice can be replayed only inside that window, and the
receiver refuses a second notice with the same event id, so no replay has any effect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import (
    HTTPMessageSignaturesException,
)
from http_message_signatures.structures import (
    CaseInsensitiveDict,
)

from numident.core.clock import Clock
from numident.errors import Unauthenticated
from numident.trust.keys import PrivateKey, PublicKey

TAG = "numident-notice"
LABEL = "notice"
COVERED = ("@method", "@target-uri", "content-type", "content-digest")
_ALGORITHMS: dict[str, Any] = {"ed25519": algorithms.ED25519,
                               "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256}


class _Message:
    """The request shape the signature library reads: method, absolute URL, headers."""

    def __init__(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        self.method = method.upper()
        self.url = url
        self.headers = CaseInsensitiveDict(dict(headers))  # type: ignore[no-untyped-call]


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, private: PrivateKey | None = None,
                 lookup: Callable[[str], PublicKey | None] | None = None) -> None:
        self._private = private
        self._lookup = lookup

    def resolve_private_key(self, key_id: str) -> Any:
        assert self._private is not None
        return self._private.jose.private_key

    def resolve_public_key(self, key_id: str) -> Any:
        key = self._lookup(key_id) if self._lookup else None
        if key is None:
            raise Unauthenticated(f"unknown signing key {key_id!r}", code="UNKNOWN_KEY")
        return key.jose.public_key


class NoticeSigner:
    def __init__(self, key: PrivateKey, *, now: Callable[[], datetime] | None = None) -> None:
        self._key = key
        self._now = now
        self._signer = HTTPMessageSigner(
            signature_algorithm=_ALGORITHMS[key.http_signature_algorithm],
            key_resolver=_Keys(private=key))

    def sign(self, method: str, url: str, body: bytes, headers: dict[str, str]
             ) -> dict[str, str]:
        """Headers to add to the request: ``Content-Digest``, ``Signature-Input``, ``Signature``."""
        message = _Message(method, url, headers)
        self._signer.sign(message, key_id=self._key.kid, label=LABEL, tag=TAG, body=body,
                          created=self._now() if self._now else None,
                          covered_component_ids=COVERED)
        return {name: message.headers[name]
                for name in ("Content-Digest", "Signature-Input", "Signature")}


class NoticeVerifier:
    def __init__(self, lookup_key: Callable[[str], PublicKey | None], clock: Clock,
                 max_age: int = 300) -> None:
        self._lookup = lookup_key
        self._clock = clock
        self._max_age = max_age

    def verify(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> str:
        """The ``keyid`` of a valid signature over this request, or :class:`Unauthenticated`.

        Codes: ``SIGNATURE_MISSING``, ``UNKNOWN_KEY``, ``SIGNATURE_INVALID``,
        ``SIGNATURE_EXPIRED``, ``DIGEST_MISMATCH``.
        """
        message = _Message(method, url, headers)
        if "signature" not in message.headers or "signature-input" not in message.headers:
            raise Unauthenticated("the notice is not signed", code="SIGNATURE_MISSING")
        keyid = _keyid(message.headers["signature-input"])
        key = self._lookup(keyid) if keyid else None
        if key is None or keyid is None:
            raise Unauthenticated(f"unknown signing key {keyid!r}", code="UNKNOWN_KEY")
        verifier = HTTPMessageVerifier(
            signature_algorithm=_ALGORITHMS[key.http_signature_algorithm],
            key_resolver=_Keys(lookup=self._lookup))
        try:
            results = verifier.verify(message, max_age=None, expect_tag=TAG,
                                      require_components=COVERED, body=body)
        except HTTPMessageSignaturesException as exc:
            text = str(exc).lower()
            code = "DIGEST_MISMATCH" if "digest" in text else "SIGNATURE_INVALID"
            raise Unauthenticated(f"notice signature refused: {exc}", code=code) from exc
        created = results[0].parameters.get("created")
        now = self._clock.now().timestamp()
        if not isinstance(created, int) or created < now - self._max_age:
            raise Unauthenticated("the notice signature is too old", code="SIGNATURE_EXPIRED")
        if created > now + 30:
            raise Unauthenticated("the notice signature is from the future",
                                  code="SIGNATURE_INVALID")
        return keyid


def _keyid(signature_input: str) -> str | None:
    marker = 'keyid="'
    start = signature_input.find(marker)
    if start < 0:
        return None
    end = signature_input.find('"', start + len(marker))
    return signature_input[start + len(marker):end] if end > 0 else None

