"""What the messenger's outbox carries, and how each kind is delivered.

One durable outbox (``messenger_outbox``), one dispatcher, two kinds of message:

- ``webhook``: a state change ``{"accountId","from","to","at"}`` POSTed to the organizer's
  backend (``messenger.webhook_url``);
- ``withdrawal``: "forget this identification code" for an operator whose usage is no longer
  ours (SPEC rule 6). ``destination`` is the operator's ИНН, ``payload`` the code. It is queued
  in the same transaction as the number change, so a gateway that is down loses nothing: the
  dispatcher retries it for the whole 24-hour window. A usage the gateway no longer has (404)
  counts as withdrawn.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from numident.client.gateway import Refused, TryLater
from numident.messenger.operators import OperatorDirectory
from numident.outbox.dispatcher import DeliveryOutcome, Sender
from numident.outbox.store import OutboxMessage, SqlOutbox
from numident.storage.ids import new_id

WITHDRAWAL_KIND = "withdrawal"


def queue_withdrawal(outbox: SqlOutbox, conn: Connection, operator_inn: str,
                     identification_code: str, account_id: str, now: datetime) -> None:
    """Queue, in ``conn``'s transaction, the withdrawal of ``identification_code``."""
    outbox.add(conn, OutboxMessage(
        id=new_id(), destination=operator_inn, kind=WITHDRAWAL_KIND,
        payload=identification_code.encode("ascii"), content_type="text/plain",
        created_at=now, owner=account_id))


class MessengerSender:
    """Sends webhooks with ``webhooks`` and withdrawals through the operators' clients."""

    def __init__(self, webhooks: Sender, operators: OperatorDirectory) -> None:
        self._webhooks = webhooks
        self._operators = operators

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        if message.kind != WITHDRAWAL_KIND:
            return await self._webhooks.send(message)
        client = self._operators.client(message.destination)
        if client is None:
            return DeliveryOutcome.retry(f"no endpoint configured for operator "
                                         f"{message.destination}")
        reply = await client.withdraw(message.payload.decode("ascii"))
        if isinstance(reply, TryLater):
            return DeliveryOutcome.retry(reply.reason, reply.retry_after)
        if isinstance(reply, Refused):
            return DeliveryOutcome.reject(reply.reason)
        return DeliveryOutcome.delivered()
