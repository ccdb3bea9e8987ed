"""The SMS port: how a one-time code reaches the user's phone.

``SmsSender.send`` either hands the message over or raises
:class:`~numident.errors.UpstreamUnavailable`. Adapters: ``MemorySmsSender`` (unit tests),
``FileSmsSender`` (appends JSON lines ``{"to","text","at"}``; the demo and the tests read codes
from it) and ``HttpSmsSender`` (POSTs ``{"to","text"}`` to a provider with a bearer token).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio
import httpx2

from numident.config import Settings
from numident.core.clock import Clock, SystemClock, rfc3339
from numident.errors import ConfigurationError, UpstreamUnavailable

_CODE = re.compile(r"\b(\d{4,10})\b")


class SmsSender(Protocol):
    async def send(self, to: str, text: str) -> None:
        """Hand one message for ``to`` (E.164) over; raise ``UpstreamUnavailable`` on failure."""
        ...


@dataclass
class MemorySmsSender:
    """Keeps messages in ``sent`` as ``(to, text)``; ``fail`` makes every send fail."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    fail: bool = False

    async def send(self, to: str, text: str) -> None:
        if self.fail:
            raise UpstreamUnavailable("the SMS provider is unavailable", code="SMS_UNAVAILABLE")
        self.sent.append((to, text))

    def last_code(self, to: str) -> str:
        """The code in the latest message to ``to``; KeyError when none was sent."""
        for number, text in reversed(self.sent):
            if number == to:
                return code_in(text)
        raise KeyError(to)


class FileSmsSender:
    """Appends each message as one JSON line to ``path`` (created with its folder)."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = path
        self._clock = clock or SystemClock()

    async def send(self, to: str, text: str) -> None:
        line = json.dumps({"to": to, "text": text,
                           "at": rfc3339(self._clock.now())},
                          ensure_ascii=False) + "\n"
        try:
            await anyio.to_thread.run_sync(self._append, line)
        except OSError as exc:
            raise UpstreamUnavailable(f"cannot write SMS file {self.path}: {exc}",
                                      code="SMS_UNAVAILABLE") from exc

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


def last_code_in_file(path: Path, to: str) -> str | None:
    """The code in the latest message to ``to`` that a ``FileSmsSender`` wrote, or None."""
    if not path.exists():
        return None
    found: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message.get("to") == to:
            found = code_in(message["text"])
    return found


def code_in(text: str) -> str:
    match = _CODE.search(text)
    if match is None:
        raise ValueError(f"no code in {text!r}")
    return match.group(1)


class HttpSmsSender:
    """POSTs ``{"to","text"}`` as JSON to ``url`` with ``Authorization: Bearer <token>``."""

    def __init__(self, url: str, token: str, client: httpx2.AsyncClient) -> None:
        self.url = url
        self._token = token
        self._client = client

    async def send(self, to: str, text: str) -> None:
        try:
            response = await self._client.post(
                self.url, json={"to": to, "text": text},
                headers={"Authorization": f"Bearer {self._token}"})
        except httpx2.HTTPError as exc:
            raise UpstreamUnavailable(f"SMS provider unreachable: {type(exc).__name__}",
                                      code="SMS_UNAVAILABLE") from exc
        if not response.is_success:
            raise UpstreamUnavailable(f"SMS provider answered HTTP {response.status_code}",
                                      code="SMS_UNAVAILABLE")


def sms_sender_from_settings(settings: Settings, clock: Clock | None = None) -> SmsSender:
    """The sender the settings choose (``messenger.sms.kind``)."""
    sms = settings.messenger.sms
    if sms.kind == "http":
        if not sms.url or sms.token is None:
            raise ConfigurationError("messenger.sms.url and messenger.sms.token are required "
                                     "when messenger.sms.kind is 'http'")
        timeout = settings.messenger.request_timeout_seconds
        return HttpSmsSender(sms.url, sms.token.get_secret_value(),
                             httpx2.AsyncClient(timeout=timeout))
    return FileSmsSender(sms.path or settings.home / "messenger" / "sms.jsonl", clock)
