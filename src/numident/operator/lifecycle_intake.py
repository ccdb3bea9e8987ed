"""Lifecycle events as they arrive from the operator's systems: the wire format and its checks.

The same JSON object is accepted by the admin API (``POST /admin/v1/events``) and from the
NATS JetStream subject ``{prefix}.lifecycle.{operator}``::

    {"type": "contract_terminated", "phoneNumber": "+79161234567",
     "occurredAt": "2026-03-01T10:00:00Z", "eventId": "billing-77", "newContractId": null}

An event with an ``eventId`` already recorded changes nothing, so redeliveries are harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import anyio
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from numident.core.notices import NoticeType
from numident.core.numbers import normalize
from numident.errors import InvalidInput, NotFound
from numident.operator.gateway import Gateway
from numident.outbox.nats import PoisonMessage


class LifecycleEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: NoticeType
    phoneNumber: StrictStr
    occurredAt: AwareDatetime | None = None
    eventId: StrictStr | None = Field(None, min_length=1, max_length=64)
    newContractId: StrictStr | None = Field(None, min_length=1, max_length=64)


class NatsLifecycleIntake:
    """The handler of the lifecycle subject: records each event, refuses poison for good."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def handle(self, payload: bytes, headers: Mapping[str, str]) -> None:
        try:
            event = LifecycleEvent.model_validate_json(payload)
            number = normalize(event.phoneNumber)
        except (ValidationError, InvalidInput) as exc:
            raise PoisonMessage(f"lifecycle event refused: {exc}") from exc
        # Without an id a redelivered event could not be told from a new one.
        event_id = event.eventId or headers.get("Nats-Msg-Id")
        if not event_id:
            raise PoisonMessage("lifecycle events from NATS need an eventId (or Nats-Msg-Id)")
        record = functools.partial(
            self._gateway.record_event, event.type, number, source="nats",
            occurred_at=event.occurredAt, event_id=event_id,
            new_contract_id=event.newContractId)
        try:
            await anyio.to_thread.run_sync(record)
        except NotFound as exc:
            raise PoisonMessage(exc.message) from exc
