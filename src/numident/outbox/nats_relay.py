"""Notice dispatch through NATS JetStream, for gateways running several replicas.

Design (at-least-once under SIGKILL of any replica at any point):

1. **Relay** (``JetStreamNoticeRelay``, any number of replicas): claims due *pending* rows with
   the same lease as the SQL dispatcher, publishes each to ``{prefix}.{kind}.{owner}`` with
   ``Nats-Msg-Id`` = the message id, waits for JetStream's PubAck, then marks the rows
   ``relayed``. Killed before the PubAck: the lease expires and the row is published again.
   Killed after the PubAck but before marking: the same, and JetStream drops the second copy
   if it comes within the stream's duplicate window (which must exceed the lease; otherwise
   the receiver gets a duplicate, which at-least-once allows). A requeued dead letter gets
   ``Nats-Msg-Id`` = ``{id}~{requeues}`` so deduplication cannot swallow it.
2. **Worker** (``JetStreamDeliveryWorker``, any number of replicas sharing one durable pull
   consumer): sends each stream message through a ``Sender`` and then records the outcome in
   the SQL outbox and settles the stream message: delivered -> row ``delivered``, ``ack``;
   retry -> row stays ``relayed`` with the error and the next try time, ``nak(delay)`` per the
   ``RetryPolicy`` (the attempt count is JetStream's delivery count); give-up or reject -> row
   ``dead``, ``term``. Killed before settling: JetStream redelivers after ``ack_wait``.

Once a row is ``relayed`` the stream, not the table, owns its delivery; the row is the record
that staff read. The stream must therefore be durable (file storage, replicas in a cluster),
and ``ack_wait`` must exceed the sender's timeout. A failure to write the record does not stop
the settlement: the message is acknowledged all the same, and the row may lag as ``relayed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from numident.core.clock import Clock, parse_rfc3339, rfc3339
from numident.outbox.dispatcher import Sender, send_safely, settlement_for
from numident.outbox.loop import BatchLoop, WakeableLoop
from numident.outbox.nats import DurablePullConsumer, subject_token
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import OutboxRecord, Settlement, SqlOutbox

log = logging.getLogger(__name__)

H_ID = "Numident-Id"
H_KIND = "Numident-Kind"
H_OWNER = "Numident-Owner"
H_DESTINATION = "Numident-Destination"
H_CONTENT_TYPE = "Numident-Content-Type"
H_CREATED_AT = "Numident-Created-At"
H_WINDOW_START = "Numident-Window-Start"


def stream_headers(record: OutboxRecord) -> dict[str, str]:
    """The headers that carry ``record``'s envelope through the stream (payload = body)."""
    headers = {
        "Nats-Msg-Id": record.id if not record.requeues else f"{record.id}~{record.requeues}",
        H_ID: record.id,
        H_KIND: record.kind,
        H_DESTINATION: record.destination,
        H_CONTENT_TYPE: record.content_type,
        H_CREATED_AT: rfc3339(record.created_at),
        H_WINDOW_START: rfc3339(record.retry_window_start),
    }
    if record.owner is not None:
        headers[H_OWNER] = record.owner
    return headers


def record_from_stream(msg: Msg) -> OutboxRecord:
    """The outbox record a stream message carries; KeyError/ValueError if it is not one."""
    h = msg.headers or {}
    created_at = parse_rfc3339(h[H_CREATED_AT])
    window_start = parse_rfc3339(h[H_WINDOW_START])
    return OutboxRecord(
        id=h[H_ID], kind=h[H_KIND], owner=h.get(H_OWNER), destination=h[H_DESTINATION],
        content_type=h[H_CONTENT_TYPE], payload=msg.data, created_at=created_at,
        status="relayed", attempts=msg.metadata.num_delivered, next_attempt_at=created_at,
        requeued_at=window_start if window_start != created_at else None,
    )


class JetStreamNoticeRelay(BatchLoop):
    """Moves due pending outbox rows into JetStream (see the module docstring)."""

    def __init__(
        self,
        outbox: SqlOutbox,
        js: JetStreamContext,
        clock: Clock,
        *,
        prefix: str = "numident",
        batch_size: int = 100,
        lease_seconds: float = 60,
        publish_timeout: float = 5.0,
        wakeup: WakeableLoop | None = None,
    ) -> None:
        super().__init__(clock, wakeup)
        self.outbox = outbox
        self.js = js
        self.clock = clock
        self.prefix = prefix
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.publish_timeout = publish_timeout

    def subject_for(self, record: OutboxRecord) -> str:
        return f"{self.prefix}.{subject_token(record.kind)}.{subject_token(record.owner or '_')}"

    async def run_once(self) -> int:
        """Publish one batch of due rows; returns how many JetStream has stored."""
        batch = await asyncio.to_thread(
            self.outbox.claim_due, self.clock.now(), self.batch_size, self.lease_seconds,
            count_attempt=False,
        )
        self._last_batch = len(batch)
        if not batch:
            return 0
        results = await asyncio.gather(*(self._publish(r) for r in batch))
        relayed = [r.id for r, ok in zip(batch, results, strict=True) if ok]
        await asyncio.to_thread(self.outbox.mark_relayed, relayed)
        return len(relayed)

    async def _publish(self, record: OutboxRecord) -> bool:
        try:
            await self.js.publish(
                self.subject_for(record), record.payload, timeout=self.publish_timeout,
                headers=stream_headers(record),
            )
        except (nats.errors.Error, TimeoutError) as exc:
            # The row stays leased; it is published again once the lease expires.
            log.warning("relaying outbox message %s failed: %s", record.id, exc)
            return False
        return True


class JetStreamDeliveryWorker(DurablePullConsumer):
    """Delivers relayed messages from a durable pull consumer through ``sender``."""

    def __init__(
        self,
        js: JetStreamContext,
        outbox: SqlOutbox,
        sender: Sender,
        clock: Clock,
        policy: RetryPolicy | None = None,
        *,
        stream: str,
        subject: str,
        durable: str = "numident-delivery",
        batch_size: int = 100,
        concurrency: int = 16,
        ack_wait: float = 60.0,
        on_settled: Callable[[Sequence[Settlement]], None] | None = None,
    ) -> None:
        self.js = js
        self.outbox = outbox
        self.sender = sender
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.ack_wait = ack_wait
        self.on_settled: Callable[[Sequence[Settlement]], None] = on_settled or (lambda _: None)
        """Told of every batch of outcomes once recorded (metrics)."""

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(ack_wait=self.ack_wait, max_deliver=-1,
                              max_ack_pending=max(1000, self.batch_size * 4))

    async def run_once(self, wait: float = 1.0) -> int:
        """Deliver one fetched batch (waiting up to ``wait`` s for it); returns delivered."""
        messages = await self.fetch(self.batch_size, wait)
        if not messages:
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def deliver(msg: Msg) -> Settlement | None:
            try:
                record = record_from_stream(msg)
            except (KeyError, ValueError) as exc:
                log.error("terminating a stream message that is no outbox message: %r", exc)
                await msg.term()
                return None
            async with limit:
                outcome = await send_safely(self.sender, record)
            settlement = settlement_for(record, outcome, self.policy, self.clock, record.attempts)
            return dataclasses.replace(settlement, relayed=True)

        pairs = [
            (msg, s)
            for msg, s in zip(messages, await asyncio.gather(*map(deliver, messages)), strict=True)
            if s is not None
        ]
        try:
            await asyncio.to_thread(self.outbox.settle, [s for _, s in pairs])
        except Exception:  # the stream owns delivery; the row is only its record (see above)
            log.exception("recording %d delivery outcomes in the outbox failed", len(pairs))
        self.on_settled([s for _, s in pairs])
        await asyncio.gather(*(self._settle_stream(msg, s) for msg, s in pairs))
        return sum(s.delivered for _, s in pairs)

    async def _settle_stream(self, msg: Msg, settlement: Settlement) -> None:
        if settlement.delivered:
            await msg.ack()
        elif settlement.retry_at is None:
            log.warning("outbox message %s is a dead letter: %s", settlement.id, settlement.error)
            await msg.term()
        else:
            delay = max(0.0, (settlement.retry_at - settlement.now).total_seconds())
            await msg.nak(delay=delay)
