"""How SIM swap subscription events leave the gateway, and how subscriptions expire.

The events share the notices' outbox, dispatcher, retries and dead letters, but not their
authentication: a notice is signed with the operator's key and goes to the organizer's
registered address, while a SIM swap event goes to the subscription's sink with
``Authorization: Bearer <sinkCredential.accessToken>``, read from the subscription when the
event is sent (the token is stored once, sealed, never copied into the outbox). Sinks inside
the operator's network are refused before every send (:mod:`numident.sinks.addresses`).
:class:`ByKind` puts both senders behind one dispatcher; :func:`run_sweep` ends expired
subscriptions even when no request or swap comes in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

import httpx2
from sqlalchemy import Engine

from numident.camara import sim_swap_events
from numident.core.clock import Clock
from numident.outbox.dispatcher import DeliveryOutcome, Sender
from numident.outbox.http_sender import HttpSender
from numident.outbox.loop import StopSignal, WakeableLoop
from numident.outbox.store import OutboxMessage
from numident.sinks.addresses import SinkGuard
from numident.sinks.tokens import SinkTokenCipher, UnreadableSinkToken


class SinkSender:
    """POSTs SIM swap events to their sink with the subscription's bearer token.

    Before each send the sink's host is checked again (``guard``: the name may resolve
    elsewhere since the subscription was made) and the stored token is opened (``cipher``);
    when either fails the attempt fails without connecting, and is retried and eventually
    dead-lettered like any other failure, with the reason as its error.
    """

    def __init__(self, client: httpx2.AsyncClient, engine: Engine, cipher: SinkTokenCipher,
                 guard: SinkGuard, *, now: Callable[[], datetime]) -> None:
        self.client = client
        self.engine = engine
        self.cipher = cipher
        self.guard = guard
        self._now = now

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        try:
            subscription_id = str(json.loads(message.payload)["data"]["subscriptionId"])
        except (ValueError, KeyError, TypeError):
            return DeliveryOutcome.reject("not a SIM swap subscription event")
        refusal = await asyncio.to_thread(self.guard.refusal, message.destination)
        if refusal is not None:
            return DeliveryOutcome.retry(f"sink refused: {refusal}")
        found, sealed = await asyncio.to_thread(sim_swap_events.sealed_sink_token, self.engine,
                                                subscription_id)
        if not found:
            return DeliveryOutcome.reject(f"subscription {subscription_id} does not exist")
        try:
            token = None if sealed is None else self.cipher.open(subscription_id, sealed)
        except UnreadableSinkToken as exc:
            return DeliveryOutcome.retry(f"subscription {subscription_id}: {exc}")
        header = {} if token is None else {"Authorization": f"Bearer {token}"}
        sender = HttpSender(self.client, lambda *_: header, now=self._now)
        return await sender.send(message)


class ByKind:
    """Sends messages of ``kind`` (SIM swap events unless told) through ``sink_events`` and
    every other message via ``others``."""

    def __init__(self, others: Sender, sink_events: Sender,
                 kind: str = sim_swap_events.OUTBOX_KIND) -> None:
        self.others = others
        self.sink_events = sink_events
        self.kind = kind

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        if message.kind == self.kind:
            return await self.sink_events.send(message)
        return await self.others.send(message)


async def run_sweep(engine: Engine, clock: Clock, source: str, on_ended: Callable[[], None],
                    stop: StopSignal, interval: float) -> None:
    """End expired subscriptions every ``interval`` seconds until ``stop``; ``on_ended`` is
    called after a sweep that queued events (it wakes the dispatcher)."""

    async def step() -> bool:
        ended = await asyncio.to_thread(sim_swap_events.sweep, engine, clock.now(), source)
        if ended:
            on_ended()
        return False

    await WakeableLoop(clock).run(step, stop, interval)
