"""The dispatcher against a SQLite outbox, a fake clock and an in-memory sender."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest
from outbox_fakes import FakeSender

from numident.core.clock import FakeClock
from numident.outbox import (
    DeliveryOutcome,
    Dispatcher,
    OutboxMessage,
    OutboxRecord,
    RetryPolicy,
    SqlOutbox,
)

pytestmark = pytest.mark.anyio

Store = Callable[..., OutboxMessage]


def dispatcher(outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy,
               **options: int) -> Dispatcher:
    return Dispatcher(outbox, sender, clock, policy, **options)


async def test_due_messages_are_delivered_and_recorded(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """Every committed message is sent once and marked delivered at the time of sending."""
    messages = [store() for _ in range(3)]
    delivered = await dispatcher(outbox, sender, clock, policy).run_once()
    assert delivered == 3
    assert sorted(sender.calls) == sorted(m.id for m in messages)
    record = outbox.get(messages[0].id)
    assert record is not None
    assert (record.status, record.attempts, record.delivered_at) == ("delivered", 1, clock.now())
    assert outbox.counts() == {"pending": 0, "relayed": 0, "delivered": 3, "dead": 0}
    assert await dispatcher(outbox, sender, clock, policy).run_once() == 0
    assert len(sender.calls) == 3


async def test_a_failed_send_is_retried_after_a_growing_delay(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """Failures are retried after 1 s, then 2 s; the message is not sent before it is due."""
    message = store()
    sender.answer(message.id, DeliveryOutcome.retry("HTTP 500"), DeliveryOutcome.retry("HTTP 502"))
    d = dispatcher(outbox, sender, clock, policy)
    start = clock.now()

    assert await d.run_once() == 0
    record = outbox.get(message.id)
    assert record is not None
    assert (record.status, record.attempts, record.last_error) == ("pending", 1, "HTTP 500")
    assert record.next_attempt_at == start + timedelta(seconds=1)
    clock.advance(0.999)
    assert await d.run_once() == 0
    assert len(sender.calls) == 1

    clock.advance(0.001)
    assert await d.run_once() == 0
    record = outbox.get(message.id)
    assert record is not None
    assert record.next_attempt_at == start + timedelta(seconds=3)

    clock.advance(2)
    assert await d.run_once() == 1
    record = outbox.get(message.id)
    assert record is not None
    assert (record.status, record.attempts) == ("delivered", 3)
    assert sender.calls == [message.id] * 3


async def test_retry_after_from_the_receiver_is_honoured(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """A 429 with Retry-After: 120 delays the next try by 120 s, not by the 1 s backoff."""
    message = store()
    sender.answer(message.id, DeliveryOutcome.retry("HTTP 429", retry_after=120))
    d = dispatcher(outbox, sender, clock, policy)
    await d.run_once()
    record = outbox.get(message.id)
    assert record is not None
    assert record.next_attempt_at == clock.now() + timedelta(seconds=120)
    clock.advance(119)
    assert await d.run_once() == 0
    clock.advance(1)
    assert await d.run_once() == 1


async def test_a_message_becomes_a_dead_letter_after_24_hours_of_failures(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """An unreachable receiver is tried until exactly 24 h after creation, then given up."""
    message = store()
    sender.default = DeliveryOutcome.retry("connection refused")
    d = dispatcher(outbox, sender, clock, policy)
    while (record := outbox.get(message.id)) is not None and record.status == "pending":
        clock.advance((record.next_attempt_at - clock.now()).total_seconds())
        await d.run_once()
    assert record is not None
    assert record.status == "dead"
    assert record.last_attempt_at == message.created_at + timedelta(hours=24)
    # 1+2+...+2048 s is about 68 min, then hourly until the deadline: 12 + 23 + the last one.
    assert record.attempts == len(sender.calls) == 36
    assert record.last_error == "connection refused"
    clock.advance(3600)
    assert await d.run_once() == 0


async def test_a_rejected_message_is_a_dead_letter_at_once_and_staff_can_requeue_it(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """A reject needs no 24 h of retries; a requeue sends it again with a fresh window."""
    message = store()
    sender.answer(message.id, DeliveryOutcome.reject("HTTP 400: bad event"))
    d = dispatcher(outbox, sender, clock, policy)
    assert await d.run_once() == 0
    record = outbox.get(message.id)
    assert record is not None
    assert (record.status, record.last_error) == ("dead", "rejected: HTTP 400: bad event")

    clock.advance(2 * 86_400)
    assert outbox.requeue_dead(None, clock.now()) == 1
    assert await d.run_once() == 1
    record = outbox.get(message.id)
    assert record is not None
    assert (record.status, record.requeues, record.attempts) == ("delivered", 1, 1)


async def test_a_sender_that_raises_costs_one_attempt_not_the_batch(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """A bug in a sender turns into a retry of that message; the others are delivered."""
    bad, good = store(), store()

    class Exploding(FakeSender):
        async def send(self, message: OutboxMessage) -> DeliveryOutcome:
            if message.id == bad.id:
                raise RuntimeError("boom")
            return await super().send(message)

    exploding = Exploding()
    assert await dispatcher(outbox, exploding, clock, policy).run_once() == 1
    bad_record, good_record = outbox.get(bad.id), outbox.get(good.id)
    assert bad_record is not None
    assert good_record is not None
    assert bad_record.status == "pending"
    assert bad_record.last_error == "sender raised RuntimeError: boom"
    assert good_record.status == "delivered"


async def test_sends_run_concurrently_but_never_beyond_the_limit(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """With concurrency 3, exactly three sends overlap at most, and all 20 are delivered."""
    for _ in range(20):
        store()
    sender.yields = 5
    assert await dispatcher(outbox, sender, clock, policy, concurrency=3).run_once() == 20
    assert sender.max_in_flight == 3


async def test_one_round_takes_at_most_a_batch(
    outbox: SqlOutbox, sender: FakeSender, clock: FakeClock, policy: RetryPolicy, store: Store
) -> None:
    """batch_size bounds a round; the oldest messages go first."""
    messages = []
    for _ in range(5):
        messages.append(store())
        clock.advance(1)
    d = dispatcher(outbox, sender, clock, policy, batch_size=2)
    assert await d.run_once() == 2
    assert sorted(sender.calls) == sorted(m.id for m in messages[:2])


async def test_wake_makes_an_idle_dispatcher_send_a_new_message_at_once(
    outbox: SqlOutbox, sender: FakeSender, policy: RetryPolicy, store: Store
) -> None:
    """A writer's wake() cuts the idle wait short: the message goes out in the next round."""

    class HourClock(FakeClock):
        """Idles for an hour of real time: only a wake can make the test finish."""

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(3600)

    claimed = threading.Event()

    class WatchedOutbox(SqlOutbox):
        def claim_due(self, *args: Any, **kwargs: Any) -> list[OutboxRecord]:
            records = super().claim_due(*args, **kwargs)
            claimed.set()
            return records

    d = Dispatcher(WatchedOutbox(outbox.engine, outbox.table), sender, HourClock(), policy)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(d.run, stop)
        # The first round finds nothing; then the dispatcher idles.
        assert await anyio.to_thread.run_sync(claimed.wait, 5)
        message = store()
        d.wake()
        with anyio.fail_after(5):
            await sender.sent.wait()
        stop.set()
    assert sender.calls == [message.id]
