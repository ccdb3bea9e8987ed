"""How ping-mode CIBA clients hear of a decision: a POST of ``{"auth_req_id"}`` to their
``backchannel_client_notification_endpoint`` with ``Authorization: Bearer
<client_notification_token>`` (CIBA Core 10.2).

The pings share the notices' outbox, so they are retried and dead-lettered like notices; the
bearer token is read, sealed, from the request when the ping is sent, never copied into the
outbox. Endpoints inside the operator's network are refused before every send, as SIM swap
sinks are (:class:`~numident.sinks.addresses.SinkGuard`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

import httpx2

from numident.operator.ciba import Ciba
from numident.outbox.dispatcher import DeliveryOutcome
from numident.outbox.http_sender import HttpSender
from numident.outbox.store import OutboxMessage
from numident.sinks.addresses import SinkGuard
from numident.sinks.tokens import UnreadableSinkToken


class PingSender:
    """Sends the outbox's CIBA pings (kind :data:`~numident.operator.ciba.PING_KIND`)."""

    def __init__(self, client: httpx2.AsyncClient, ciba: Ciba, guard: SinkGuard, *,
                 now: Callable[[], datetime]) -> None:
        self.client = client
        self.ciba = ciba
        self.guard = guard
        self._now = now

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        try:
            auth_req_id = str(json.loads(message.payload)["auth_req_id"])
        except (ValueError, KeyError, TypeError):
            return DeliveryOutcome.reject("not a CIBA ping")
        refusal = await asyncio.to_thread(self.guard.refusal, message.destination)
        if refusal is not None:
            return DeliveryOutcome.retry(f"notification endpoint refused: {refusal}")
        try:
            token = await asyncio.to_thread(self.ciba.notification_token, auth_req_id)
        except UnreadableSinkToken as exc:
            return DeliveryOutcome.retry(f"client_notification_token: {exc}")
        if token is None:
            return DeliveryOutcome.reject("the request of this ping no longer exists")
        header = {"Authorization": f"Bearer {token}"}
        return await HttpSender(self.client, lambda *_: header, now=self._now).send(message)
