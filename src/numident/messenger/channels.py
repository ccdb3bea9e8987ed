"""The possession port: how a one-time code reaches the holder of a number, by channel.

- ``sms``: a text with the code;
- ``voice_call``: a call that speaks the code;
- ``flash_call``: a call that is not meant to be answered; the code is the last digits of the
  number that calls, which the provider chooses and reports (the user's app, or the user,
  reads it off the incoming call). So for this channel the code is known only once the
  provider has answered.

``CodeProvider.send`` hands one code over or raises
:class:`~numident.errors.UpstreamUnavailable` (an error answer, a timeout, a malformed
report); the possession check then tries the next channel. Adapters: ``SmsProvider`` over an
``SmsSender`` (memory, file), ``FileCallProvider`` and ``MemoryCallProvider`` for the two call
channels, and ``HttpProvider`` for any channel (URL, credentials and request shape from the
settings).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx2

from numident.config import ProviderSettings, Settings
from numident.core.clock import Clock, SystemClock
from numident.errors import UpstreamUnavailable
from numident.messenger.sms import FileSmsSender, SmsSender


class Channel(StrEnum):
    SMS = "sms"
    FLASH_CALL = "flash_call"
    VOICE_CALL = "voice_call"


@dataclass(frozen=True)
class CodeMessage:
    to: str
    """E.164."""
    code: str | None
    """None for a flash call: the calling number will carry it."""
    text: str
    """What the user reads (SMS) or hears (voice call)."""


@dataclass(frozen=True)
class Receipt:
    caller: str | None = None
    """A flash call's calling number, as the provider reported it."""


class CodeProvider(Protocol):
    async def send(self, message: CodeMessage) -> Receipt:
        """Hand the code over; raise ``UpstreamUnavailable`` when it could not be."""
        ...


def unavailable(channel: Channel, message: str) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"{channel.value} provider: {message}",
                               code=f"{channel.value.upper()}_UNAVAILABLE")


@dataclass(frozen=True)
class SmsProvider:
    """The SMS channel over an ``SmsSender`` (the memory and file senders)."""

    sender: SmsSender

    async def send(self, message: CodeMessage) -> Receipt:
        await self.sender.send(message.to, message.text)
        return Receipt()


def caller_number() -> str:
    """A calling number of the file and memory providers' pool (+7 800 and 7 random digits),
    as a real provider picks one from the numbers it holds."""
    return "+7800" + "".join(secrets.choice("0123456789") for _ in range(7))


@dataclass
class MemoryCallProvider:
    """Keeps each call in ``calls`` as ``(to, caller or text)``; fails the next ``failures``."""

    channel: Channel
    calls: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0

    async def send(self, message: CodeMessage) -> Receipt:
        if self.failures > 0:
            self.failures -= 1
            raise unavailable(self.channel, "unavailable")
        if self.channel is Channel.FLASH_CALL:
            caller = caller_number()
            self.calls.append((message.to, caller))
            return Receipt(caller)
        self.calls.append((message.to, message.text))
        return Receipt()


class FileCallProvider:
    """Appends each call as a JSON line to ``path``: ``{"to","from","at"}`` for a flash call
    (the calling number, chosen here as a provider would), ``{"to","text","code","at"}`` for
    a voice call (what the call says, and the code a voice provider is given)."""

    def __init__(self, channel: Channel, path: Path, clock: Clock | None = None) -> None:
        self.channel = channel
        self.path = path
        self._file = FileSmsSender(path, clock)

    async def send(self, message: CodeMessage) -> Receipt:
        if self.channel is Channel.FLASH_CALL:
            caller = caller_number()
            await self._file.write({"to": message.to, "from": caller})
            return Receipt(caller)
        await self._file.write({"to": message.to, "text": message.text,
                                "code": message.code or ""})
        return Receipt()


DEFAULT_BODIES: Mapping[Channel, Mapping[str, str]] = {
    Channel.SMS: {"to": "{to}", "text": "{text}"},
    Channel.VOICE_CALL: {"to": "{to}", "text": "{text}", "code": "{code}"},
    Channel.FLASH_CALL: {"to": "{to}"},
}


class HttpProvider:
    """One request per code to the provider's ``url``, shaped by ``ProviderSettings``.

    Any answer but 2xx, a transport error or a timeout is ``UpstreamUnavailable``; so is a
    flash call's answer without a calling number at ``caller_field``.
    """

    def __init__(self, channel: Channel, settings: ProviderSettings,
                 client: httpx2.AsyncClient) -> None:
        assert settings.url, "checked by ProviderSettings"
        self.channel = channel
        self.url = settings.url
        self._settings = settings
        self._body = settings.body or DEFAULT_BODIES[channel]
        self._client = client

    def _headers(self) -> tuple[dict[str, str], httpx2.BasicAuth | None]:
        s = self._settings
        if s.username is not None and s.password is not None:
            return {}, httpx2.BasicAuth(s.username, s.password.get_secret_value())
        if s.token is None:
            return {}, None
        if s.token_header:
            return {s.token_header: s.token.get_secret_value()}, None
        return {"Authorization": f"Bearer {s.token.get_secret_value()}"}, None

    async def send(self, message: CodeMessage) -> Receipt:
        values = {"to": message.to, "to_digits": message.to.lstrip("+"),
                  "code": message.code or "", "text": message.text}
        fields = {name: template.format_map(values) for name, template in self._body.items()}
        headers, auth = self._headers()
        content: dict[str, Any] = ({"json": fields} if self._settings.encoding == "json"
                                   else {"data": fields})
        if auth is not None:
            content["auth"] = auth
        try:
            response = await self._client.post(self.url, headers=headers, **content)
        except httpx2.HTTPError as exc:
            raise unavailable(self.channel, f"unreachable ({type(exc).__name__})") from exc
        if not response.is_success:
            raise unavailable(self.channel, f"answered HTTP {response.status_code}")
        if self.channel is not Channel.FLASH_CALL:
            return Receipt()
        caller = _dotted(response, self._settings.caller_field)
        if not (isinstance(caller, str) and caller.lstrip("+").isdigit()
                and len(caller.lstrip("+")) >= 6):
            raise unavailable(self.channel, f"reported no calling number at "
                              f"{self._settings.caller_field!r}")
        return Receipt(caller)


def _dotted(response: httpx2.Response, path: str) -> object:
    try:
        value: object = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def provider_settings(settings: Settings, channel: Channel) -> ProviderSettings:
    messenger = settings.messenger
    return {Channel.SMS: messenger.sms, Channel.FLASH_CALL: messenger.flash_call,
            Channel.VOICE_CALL: messenger.voice_call}[channel]


def providers_from_settings(settings: Settings, clock: Clock | None = None, *,
                            sms_sender: SmsSender | None = None,
                            ) -> tuple[dict[Channel, CodeProvider], list[httpx2.AsyncClient]]:
    """A provider for each channel of ``messenger.channels.order``, and the HTTP clients they
    hold (to close). ``sms_sender`` replaces the SMS channel's (tests)."""
    clock = clock or SystemClock()
    providers: dict[Channel, CodeProvider] = {}
    clients: list[httpx2.AsyncClient] = []
    for name in settings.messenger.channels.order:
        channel = Channel(name)
        chosen = provider_settings(settings, channel)
        if channel is Channel.SMS and sms_sender is not None:
            providers[channel] = SmsProvider(sms_sender)
        elif chosen.kind == "http":
            timeout = chosen.timeout_seconds or settings.messenger.request_timeout_seconds
            client = httpx2.AsyncClient(timeout=timeout)
            clients.append(client)
            providers[channel] = HttpProvider(channel, chosen, client)
        else:
            path = chosen.path or settings.home / "messenger" / f"{channel.value}.jsonl"
            providers[channel] = (SmsProvider(FileSmsSender(path, clock))
                                  if channel is Channel.SMS
                                  else FileCallProvider(channel, path, clock))
    return providers, clients
