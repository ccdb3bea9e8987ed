"""How the operator decides a backchannel authentication request: consent capture.

Each CAMARA purpose (``dpv:FraudPreventionAndDetection``...) has a legal basis in
``[operator.ciba].purposes``. Under ``legitimate_interest`` the operator approves at once, as
operators do for fraud prevention; under ``consent`` it asks the subscriber, by an SMS or push
message carrying the URL of an approve/deny page the gateway serves, and the request stays
pending until the subscriber answers there or it expires.

:class:`ConsentCapture` is the port (an operator may plug in its own, e.g. one that asks its
consent-management platform); :class:`PurposeConsent` is the built-in one, and
:class:`ConsentSender` the port of the message channel, with :class:`FileConsentSender` (one
JSON line per message) for tests and the demo.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


class LegalBasis(enum.StrEnum):
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONSENT = "consent"


@dataclass(frozen=True)
class Invitation:
    """What the subscriber is asked: who wants what, for which purpose, and where to answer."""

    phone_number: str
    client_id: str
    purpose: str
    scope: str
    binding_message: str | None
    url: str
    expires_at: datetime

    def text(self) -> str:
        shown = f" ({self.binding_message})" if self.binding_message else ""
        return (f"{self.client_id} asks to use your line for {self.purpose}{shown}. "
                f"Approve or deny: {self.url}")


class ConsentSender(Protocol):
    amr: str
    """How a subscriber who answers through the sent URL is authenticated (RFC 8176)."""

    def send(self, invitation: Invitation, now: datetime) -> None:
        """Deliver the invitation to the subscriber's line; raise OSError when it cannot."""
        ...


class ConsentCapture(Protocol):
    amr: str
    """The ``amr`` of requests the subscriber approved (those approved at once have none)."""

    def approves_at_once(self, purpose: str) -> bool:
        """True when the operator itself approves requests for ``purpose``."""
        ...

    def ask(self, invitation: Invitation, now: datetime) -> None:
        """Ask the subscriber; the answer arrives later through the invitation's URL."""
        ...


class PurposeConsent:
    """Decides by each purpose's configured legal basis; asks through ``sender``."""

    def __init__(self, bases: Mapping[str, str], sender: ConsentSender) -> None:
        self.bases = {purpose: LegalBasis(basis) for purpose, basis in bases.items()}
        self.sender = sender
        self.amr = sender.amr

    def approves_at_once(self, purpose: str) -> bool:
        return self.bases.get(purpose) is LegalBasis.LEGITIMATE_INTEREST

    def ask(self, invitation: Invitation, now: datetime) -> None:
        self.sender.send(invitation, now)


class FileConsentSender:
    """Appends ``{"to","text","url","at"}`` as one JSON line per message to ``path``."""

    amr = "sms"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, invitation: Invitation, now: datetime) -> None:
        line = json.dumps({"to": invitation.phone_number, "text": invitation.text(),
                           "url": invitation.url, "at": now.isoformat()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def last_url_in_file(path: Path, phone_number: str) -> str | None:
    """The approve/deny URL most recently sent to ``phone_number`` by a FileConsentSender."""
    if not path.exists():
        return None
    found = None
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message.get("to") == phone_number:
            found = str(message["url"])
    return found
