"""The in-process dispatcher: claims due outbox rows and sends them through a ``Sender``.

Delivery is at-least-once. A batch is leased before sending and settled after; if the process
dies in between, the lease expires and the rows are sent again, so receivers must deduplicate
by message id (the event id). ``lease_seconds`` should exceed the time a whole batch can take
(about ``batch_size / concurrency`` times the sender's timeout); if it does not, another replica
may send a slow message a second time, which is harmless but wasteful.

Outcomes (what a ``Sender`` reports):

- ``delivered``: the receiver accepted the message;
- ``retry``: try again per the ``RetryPolicy`` (optionally not before ``retry_after`` seconds),
  dead letter once the 24-hour window is spent;
- ``reject``: the receiver will never accept these bytes: dead letter at once (staff may requeue).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from numident.core.clock import Clock
from numident.outbox.loop import BatchLoop, WakeableLoop
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import OutboxMessage, OutboxRecord, Settlement, SqlOutbox

log = logging.getLogger(__name__)


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECT = "reject"


@dataclass(frozen=True)
class DeliveryOutcome:
    """What became of one send; build it with the class methods."""

    verdict: Verdict
    error: str | None = None
    retry_after: float | None = None

    @classmethod
    def delivered(cls) -> DeliveryOutcome:
        return cls(Verdict.DELIVERED)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> DeliveryOutcome:
        return cls(Verdict.RETRY, error, retry_after)

    @classmethod
    def reject(cls, error: str) -> DeliveryOutcome:
        return cls(Verdict.REJECT, error)


class Sender(Protocol):
    """Sends one message to its destination; reports failures as outcomes, never raises."""

    async def send(self, message: OutboxMessage) -> DeliveryOutcome: ...


async def send_safely(sender: Sender, message: OutboxMessage) -> DeliveryOutcome:
    """``sender.send``, with an unexpected exception turned into a retry (one bad message must
    not take the rest of its batch down)."""
    try:
        return await sender.send(message)
    except Exception as exc:
        log.exception("sender failed on outbox message %s", message.id)
        return DeliveryOutcome.retry(f"sender raised {type(exc).__name__}: {exc}")


def settlement_for(
    record: OutboxRecord,
    outcome: DeliveryOutcome,
    policy: RetryPolicy,
    clock: Clock,
    attempts: int | None = None,
) -> Settlement:
    """Turn an outcome into the row update that records it (``attempts`` overrides the row's)."""
    now = clock.now()
    if outcome.verdict is Verdict.DELIVERED:
        return Settlement(record.id, now, delivered=True, attempts=attempts)
    error = outcome.error or outcome.verdict.value
    if outcome.verdict is Verdict.REJECT:
        return Settlement(record.id, now, False, f"rejected: {error}", None, attempts)
    retry_at = policy.next_attempt(
        record.retry_window_start, attempts if attempts is not None else record.attempts, now,
        retry_after=outcome.retry_after,
    )
    return Settlement(record.id, now, False, error, retry_at, attempts)


class Dispatcher(BatchLoop):
    """Drains the SQL outbox through ``sender``: ``run_once`` for one batch, ``run`` forever."""

    def __init__(
        self,
        outbox: SqlOutbox,
        sender: Sender,
        clock: Clock,
        policy: RetryPolicy | None = None,
        *,
        batch_size: int = 100,
        concurrency: int = 16,
        lease_seconds: float = 60,
        wakeup: WakeableLoop | None = None,
        on_settled: Callable[[Sequence[Settlement]], None] | None = None,
    ) -> None:
        super().__init__(clock, wakeup)
        self.outbox = outbox
        self.sender = sender
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.on_settled: Callable[[Sequence[Settlement]], None] = on_settled or (lambda _: None)
        """Told of every batch of outcomes once recorded (metrics)."""

    async def run_once(self) -> int:
        """Claim one batch of due messages, send them, record the outcomes; returns delivered."""
        batch = await asyncio.to_thread(
            self.outbox.claim_due, self.clock.now(), self.batch_size, self.lease_seconds
        )
        self._last_batch = len(batch)
        if not batch:
            return 0
        limit = asyncio.Semaphore(self.concurrency)

        async def deliver(record: OutboxRecord) -> Settlement:
            async with limit:
                outcome = await send_safely(self.sender, record)
            return settlement_for(record, outcome, self.policy, self.clock)

        settlements = await asyncio.gather(*(deliver(r) for r in batch))
        await asyncio.to_thread(self.outbox.settle, settlements)
        self.on_settled(settlements)
        for s in settlements:
            if not s.delivered:
                log.warning("outbox message %s not delivered (%s); %s", s.id, s.error,
                            f"next try at {s.retry_at}" if s.retry_at else "dead letter")
        return sum(s.delivered for s in settlements)
