"""The holder key: the installation's secret behind the stored exact-match holder attributes.

KYC Match compares some holder attributes only for equality (id document, bank account, dates,
codes: :attr:`numident.camara.matching.Way.scored` is false). The registry keeps those as
HMAC-SHA256 digests keyed by this secret, never in clear, so that a copy of the database alone
neither shows them nor lets anyone test guesses offline (every birth date or country code is
quickly tried against an unkeyed hash). A digest covers the column and the line as well as the
value's normal form, so equal values on two lines or in two columns differ and their frequencies
do not show.

The key is ``operator.camara.holder_key`` (64 hex digits, for replicas and import hosts that
must share it), else 32 random bytes kept as hex in ``{home}/operator/holder-key``, created
owner-only (0600) on first use by whichever of the gateway and the import comes first.
:attr:`HolderKey.id` (a digest of a fixed label) is stored beside the digests, so that values
stored under another key are recognised as such rather than compared.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

from numident.client.keys import ensure_secret
from numident.config import Settings
from numident.errors import ConfigurationError

KEY_BYTES = 32
HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
_ID_LABEL = b"numident holder key id"


@dataclass(frozen=True)
class HolderKey:
    """The secret, and the digests it makes."""

    secret: bytes = field(repr=False)

    @property
    def id(self) -> str:
        """A public name of the key (16 hex digits) that reveals nothing of it."""
        return hmac.digest(self.secret, _ID_LABEL, "sha256").hex()[:16]

    def digest(self, column: str, phone_number: str, normal: str) -> str:
        """HMAC-SHA256 of ``column``, ``phone_number`` and the normal form, hex (64 digits)."""
        message = "\x1f".join((column, phone_number, normal)).encode()
        return hmac.digest(self.secret, message, "sha256").hex()

    def matches(self, stored: str, column: str, phone_number: str, normal: str) -> bool:
        """Whether ``stored`` is the digest of ``normal``, compared in constant time."""
        return hmac.compare_digest(self.digest(column, phone_number, normal), stored)


def holder_key_path(settings: Settings) -> Path:
    return settings.home / "operator" / "holder-key"


def holder_key(settings: Settings) -> HolderKey:
    """The configured key, else the one kept in the home (created on first use)."""
    configured = settings.operator.camara.holder_key
    if configured is not None:
        return HolderKey(bytes.fromhex(configured.get_secret_value()))
    return HolderKey(_read_or_create(holder_key_path(settings)))


def _read_or_create(path: Path) -> bytes:
    text = ensure_secret(path, KEY_BYTES)
    if not HEX_KEY.match(text):
        raise ConfigurationError(f"{path} does not hold a holder key (64 hex digits)")
    return bytes.fromhex(text)
