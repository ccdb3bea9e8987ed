"""The SMS sender: what the SMS channel (``numident.messenger.channels``) hands texts to.

``SmsSender.send`` either hands the message over or raises
:class:`~numident.errors.UpstreamUnavailable`. Adapters: ``MemorySmsSender`` (unit tests) and
``FileSmsSender`` (appends JSON lines ``{"to","text","at"}``; the demo and the tests read codes
from it, and the file call provider writes its calls the same way). An SMS provider reached
over HTTP is ``channels.HttpProvider``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio

from numident.core.clock import Clock, SystemClock, rfc3339
from numident.errors import UpstreamUnavailable

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
        await self.write({"to": to, "text": text})

    async def write(self, record: dict[str, str]) -> None:
        """Append ``record`` with ``at``, the time; ``UpstreamUnavailable`` when it cannot."""
        line = json.dumps({**record, "at": rfc3339(self._clock.now())},
                          ensure_ascii=False) + "\n"
        try:
            await anyio.to_thread.run_sync(self._append, line)
        except OSError as exc:
            raise UpstreamUnavailable(f"cannot write {self.path}: {exc}",
                                      code="SMS_UNAVAILABLE") from exc

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)


def last_code_in_file(path: Path, to: str, *, flash_digits: int = 4) -> str | None:
    """The code in the latest message to ``to`` in a file the file providers wrote, or None:
    a flash call's last ``flash_digits`` digits of the caller, a voice call's code, or the
    code in an SMS's text."""
    if not path.exists():
        return None
    found: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        message = json.loads(line)
        if message.get("to") == to:
            caller = message.get("from")
            found = (caller[-flash_digits:] if caller
                     else message.get("code") or code_in(message["text"]))
    return found


def code_in(text: str) -> str:
    match = _CODE.search(text)
    if match is None:
        raise ValueError(f"no code in {text!r}")
    return match.group(1)
