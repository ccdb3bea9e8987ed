"""Sending one admitted code: the channels in fallback order, each provider failure backed off.

A send has a sequence of channels: the one asked for (or, for a repeated request on the same
number, the channel after the last one used: "a flash call, then SMS when it did not come"),
then the rest of ``messenger.channels.order``. Each channel gets ``attempts`` tries; between
any two tries the wait doubles from ``initial_backoff_seconds`` up to ``max_backoff_seconds``
(on the service's clock, so tests never sleep).

For SMS and voice calls the code is armed before the provider is called (it is valid the
moment it can arrive), the first try's in the admission's transaction (``arm_first``); for a
flash call it is armed from the calling number the provider reports. Arming a code replaces
the send's earlier one and a failure disarms it, so a send never has two codes valid at once,
even when a provider that timed out still delivers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import anyio
from sqlalchemy import Connection, Engine

from numident.config import MessengerSettings
from numident.core.clock import Clock
from numident.errors import InvalidInput, UpstreamUnavailable
from numident.messenger.admission import SendAdmission, audit
from numident.messenger.channels import Channel, CodeMessage, CodeProvider
from numident.messenger.metrics import MessengerMetrics
from numident.messenger.possession import PossessionChecks
from numident.storage.database import write_transaction


def channel_sequence(settings: MessengerSettings, requested: Channel | None,
                     last: str | None) -> list[Channel]:
    """The channels to try, in order, for one send; ``InvalidInput`` for a channel that the
    service does not offer (not in ``channels.order``)."""
    order = [Channel(name) for name in settings.channels.order]
    if requested is not None:
        if requested not in order:
            raise InvalidInput(f"channel {requested.value} is not offered (offered: "
                               f"{', '.join(c.value for c in order)})",
                               code="CHANNEL_NOT_OFFERED")
        first = requested
    elif last is not None and last in order:
        first = order[(order.index(Channel(last)) + 1) % len(order)]
    else:
        first = Channel(settings.channels.first)
    at = order.index(first)
    return order[at:] + order[:at]


class CodeSender:
    def __init__(self, engine: Engine, clock: Clock, settings: MessengerSettings,
                 possession: PossessionChecks, admission: SendAdmission,
                 providers: Mapping[Channel, CodeProvider], metrics: MessengerMetrics) -> None:
        self._engine = engine
        self._clock = clock
        self._settings = settings
        self._possession = possession
        self._admission = admission
        self._providers = providers
        self._metrics = metrics

    def text(self, channel: Channel, code: str) -> str:
        minutes = max(1, self._settings.possession.code_ttl_seconds // 60)
        if channel is Channel.VOICE_CALL:
            return (f"{self._settings.organizer}. Your code is {' '.join(code)}. "
                    f"Again: {' '.join(code)}.")
        return (f"{self._settings.organizer}: your code is {code}. "
                f"It expires in {minutes} min. Do not tell it to anyone.")

    def arm_first(self, conn: Connection, account_id: str, number: str, send_id: int,
                  channel: Channel, now: datetime) -> str | None:
        """Arm the code of the send's first try in ``conn``'s transaction (the admission's,
        which prepared the challenge), sparing that try a transaction of its own; the code, or
        None for a flash call, whose code is known only once the call is placed."""
        if channel is Channel.FLASH_CALL:
            return None
        code = self._possession.new_code()
        if not self._possession.arm(conn, account_id, number, send_id, channel.value, code, now):
            raise AssertionError("the challenge prepared in this transaction is gone")
        return code

    async def send(self, account_id: str, number: str, send_id: int,
                   sequence: Sequence[Channel], client_address: str | None, *,
                   armed: str | None = None) -> Channel | None:
        """Deliver the send's code by the first channel that takes it; that channel, or None
        when a newer send replaced this one meanwhile. ``armed``: the code of the first try,
        already armed (:meth:`arm_first`). ``UpstreamUnavailable`` (``CODE_NOT_DELIVERED``)
        when every try failed: the challenge is burnt and the resend throttle lifted."""
        channels = self._settings.channels
        backoff = channels.initial_backoff_seconds
        tries = 0
        failures: list[str] = []
        for channel in sequence:
            provider = self._providers[channel]
            for _ in range(channels.attempts):
                if tries:
                    await self._clock.sleep(min(backoff, channels.max_backoff_seconds))
                    backoff *= 2
                tries += 1
                code = None
                if armed is not None:
                    code, armed = armed, None
                elif channel is not Channel.FLASH_CALL:
                    code = self._possession.new_code()
                    if not await self._arm(account_id, number, send_id, channel, code):
                        return None
                try:
                    receipt = await provider.send(CodeMessage(
                        number, code, self.text(channel, code) if code else ""))
                except UpstreamUnavailable as exc:
                    failures.append(f"{channel.value}: {exc.message}")
                    await anyio.to_thread.run_sync(self._failed, account_id, number, send_id,
                                                   channel, exc, client_address)
                    continue
                if code is None:
                    caller = (receipt.caller or "").lstrip("+")
                    digits = self._settings.flash_call.code_digits
                    if not await self._arm(account_id, number, send_id, channel,
                                           caller[-digits:]):
                        return None
                await anyio.to_thread.run_sync(self._sent, account_id, number, send_id,
                                               channel, client_address)
                return channel
        await anyio.to_thread.run_sync(self._undelivered, account_id, number, send_id,
                                       client_address)
        raise UpstreamUnavailable("no channel could deliver the code (" + "; ".join(failures)
                                  + "); ask for a new one", code="CODE_NOT_DELIVERED")

    async def _arm(self, account_id: str, number: str, send_id: int, channel: Channel,
                   code: str) -> bool:
        def write() -> bool:
            with write_transaction(self._engine) as conn:
                armed = self._possession.arm(conn, account_id, number, send_id, channel.value,
                                             code, self._clock.now())
                if not armed:
                    self._admission.finish(conn, send_id, "superseded", None)
                return armed
        return await anyio.to_thread.run_sync(write)

    def _now(self) -> datetime:
        return self._clock.now()

    def _failed(self, account_id: str, number: str, send_id: int, channel: Channel,
                exc: UpstreamUnavailable, client_address: str | None) -> None:
        self._metrics.code_sends.labels(channel=channel.value, outcome="failed").inc()
        with write_transaction(self._engine) as conn:
            self._possession.disarm(conn, account_id, send_id)
            audit(conn, self._now(), account_id, number, "failed", channel=channel.value,
                  client_address=client_address, reason=exc.code,
                  detail={"message": exc.message})

    def _sent(self, account_id: str, number: str, send_id: int, channel: Channel,
              client_address: str | None) -> None:
        self._metrics.code_sends.labels(channel=channel.value, outcome="sent").inc()
        with write_transaction(self._engine) as conn:
            self._admission.finish(conn, send_id, "sent", channel.value)
            audit(conn, self._now(), account_id, number, "sent", channel=channel.value,
                  client_address=client_address)

    def _undelivered(self, account_id: str, number: str, send_id: int,
                     client_address: str | None) -> None:
        with write_transaction(self._engine) as conn:
            self._possession.unsent(conn, account_id, send_id)
            self._admission.finish(conn, send_id, "failed", None)
            audit(conn, self._now(), account_id, number, "failed",
                  client_address=client_address, reason="CODE_NOT_DELIVERED")
