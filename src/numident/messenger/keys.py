"""The organizer's key pair: it signs the client assertions sent to operators' token endpoints.

The private key lives at ``messenger.key_file`` or ``<home>/messenger/organizer-key.pem``
(created, owner-only, on first use). Its public JWK is what the organizer registers with each
operator (``numident messenger public-key``).
"""

from __future__ import annotations

from pathlib import Path

from numident.client.keys import PrivateKey, ensure_private_key
from numident.config import Settings


def organizer_key_path(settings: Settings) -> Path:
    return settings.messenger.key_file or settings.home / "messenger" / "organizer-key.pem"


def organizer_key(settings: Settings) -> PrivateKey:
    """The organizer's private key, generated (Ed25519) when the file does not exist yet."""
    return ensure_private_key(organizer_key_path(settings))
