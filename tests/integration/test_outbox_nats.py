"""The JetStream mode against the real NATS server: relay, delivery worker, subscriber.

Every test has its own stream (unique name and subjects) and deletes it afterwards.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from outbox_fixtures import (  # noqa: F401
    T0,
    NatsStream,
    commit,
    message,
    nats_stream_fixture,
    outbox_fixture,
)

from numident.core.clock import FakeClock
from numident.outbox import DeliveryOutcome, OutboxMessage, RetryPolicy, SqlOutbox
from numident.outbox.nats import JetStreamSubscriber, PoisonMessage, ensure_stream
from numident.outbox.nats_relay import JetStreamDeliveryWorker, JetStreamNoticeRelay

pytestmark = [pytest.mark.anyio, pytest.mark.nats]

QUICK = RetryPolicy(initial=timedelta(milliseconds=50), jitter=0)


class RecordingSender:
    """Delivers everything, except the outcomes scripted per message id; records each send."""

    def __init__(self, script: dict[str, list[DeliveryOutcome]] | None = None) -> None:
        self.script = script or {}
        self.received: list[tuple[str, bytes]] = []

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        self.received.append((message.id, message.payload))
        queue = self.script.get(message.id)
        return queue.pop(0) if queue else DeliveryOutcome.delivered()


class CrashesBeforeMarking(SqlOutbox):
    """An outbox whose relay dies right after JetStream stored the messages."""

    def mark_relayed(self, message_ids: object) -> int:
        raise KeyboardInterrupt("SIGKILL stand-in")


def worker(nats_stream: NatsStream, outbox: SqlOutbox, sender: RecordingSender,
           clock: FakeClock, policy: RetryPolicy = QUICK) -> JetStreamDeliveryWorker:
    return JetStreamDeliveryWorker(
        nats_stream.js, outbox, sender, clock, policy, stream=nats_stream.name,
        subject=f"{nats_stream.prefix}.notice.>", durable="delivery", ack_wait=30,
    )


async def test_relay_and_worker_deliver_each_notice_once_despite_a_crash_and_republish(
    nats_stream: NatsStream, outbox: SqlOutbox
) -> None:
    """A relay killed after publishing re-publishes after its lease; JetStream drops the copies."""
    clock = FakeClock(T0)
    commit(outbox, message(1), message(2, owner="messenger b.*"), message(3, owner=None))
    crashing = CrashesBeforeMarking(outbox.engine, outbox.table)
    with pytest.raises(KeyboardInterrupt):
        await JetStreamNoticeRelay(crashing, nats_stream.js, clock,
                                   prefix=nats_stream.prefix).run_once()
    assert outbox.counts()["pending"] == 3

    relay = JetStreamNoticeRelay(outbox, nats_stream.js, clock, prefix=nats_stream.prefix)
    assert await relay.run_once() == 0  # still leased by the dead relay
    clock.advance(60)
    assert await relay.run_once() == 3
    assert outbox.counts() == {"pending": 0, "relayed": 3, "delivered": 0, "dead": 0}
    info = await nats_stream.js.stream_info(nats_stream.name)
    assert info.state.messages == 3

    sender = RecordingSender()
    w = worker(nats_stream, outbox, sender, clock)
    try:
        assert await w.run_once(wait=5) == 3
        assert await w.run_once(wait=0.2) == 0
    finally:
        await w.close()
    assert sorted(sender.received) == [(f"evt-0000{n}", b'{"n": %d}' % n) for n in (1, 2, 3)]
    assert outbox.counts()["delivered"] == 3
    record = outbox.get("evt-00002")
    assert record is not None
    assert (record.owner, record.delivered_at) == ("messenger b.*", clock.now())
    info = await nats_stream.js.stream_info(nats_stream.name)
    assert info.state.messages == 0  # work queue: acknowledged messages are gone


async def test_a_failed_delivery_is_nakked_with_the_policy_delay_and_delivered_later(
    nats_stream: NatsStream, outbox: SqlOutbox
) -> None:
    """A 503 makes the worker nak (50 ms here); the redelivery succeeds and is recorded."""
    clock = FakeClock(T0)
    commit(outbox, message(1))
    await JetStreamNoticeRelay(outbox, nats_stream.js, clock, prefix=nats_stream.prefix).run_once()
    sender = RecordingSender({"evt-00001": [DeliveryOutcome.retry("HTTP 503")]})
    w = worker(nats_stream, outbox, sender, clock)
    try:
        assert await w.run_once(wait=5) == 0
        record = outbox.get("evt-00001")
        assert record is not None
        assert (record.status, record.attempts, record.last_error) == ("relayed", 1, "HTTP 503")
        assert record.next_attempt_at == T0 + timedelta(milliseconds=50)
        assert await w.run_once(wait=5) == 1
    finally:
        await w.close()
    record = outbox.get("evt-00001")
    assert record is not None
    assert (record.status, record.attempts) == ("delivered", 2)
    assert [i for i, _ in sender.received] == ["evt-00001", "evt-00001"]


async def test_a_message_past_its_window_is_terminated_and_dead(
    nats_stream: NatsStream, outbox: SqlOutbox
) -> None:
    """When the policy gives up, the worker terms the message and marks the row dead."""
    clock = FakeClock(T0)
    commit(outbox, message(1), message(2))
    await JetStreamNoticeRelay(outbox, nats_stream.js, clock, prefix=nats_stream.prefix).run_once()
    clock.advance(24 * 3600)
    sender = RecordingSender({"evt-00001": [DeliveryOutcome.retry("timeout")],
                              "evt-00002": [DeliveryOutcome.reject("HTTP 400")]})
    w = worker(nats_stream, outbox, sender, clock)
    try:
        assert await w.run_once(wait=5) == 0
        assert await w.run_once(wait=0.3) == 0  # terminated: no redelivery
    finally:
        await w.close()
    assert outbox.counts()["dead"] == 2
    assert len(sender.received) == 2
    dead = outbox.get("evt-00002")
    assert dead is not None
    assert dead.last_error == "rejected: HTTP 400"


async def test_a_requeued_dead_letter_is_not_swallowed_by_deduplication(
    nats_stream: NatsStream, outbox: SqlOutbox
) -> None:
    """Staff requeue within the duplicate window still reaches the receiver."""
    clock = FakeClock(T0)
    commit(outbox, message(1))
    relay = JetStreamNoticeRelay(outbox, nats_stream.js, clock, prefix=nats_stream.prefix)
    await relay.run_once()
    sender = RecordingSender({"evt-00001": [DeliveryOutcome.reject("HTTP 400")]})
    w = worker(nats_stream, outbox, sender, clock)
    try:
        await w.run_once(wait=5)
        assert outbox.requeue_dead("evt-00001", clock.now()) == 1
        assert await relay.run_once() == 1
        assert await w.run_once(wait=5) == 1
    finally:
        await w.close()
    assert len(sender.received) == 2


async def test_the_subscriber_acks_retries_and_terminates_by_what_the_handler_did(
    nats_stream: NatsStream,
) -> None:
    """Handled: ack. Failed: nak, handled again later. Poison: term, never seen again."""
    seen: list[str] = []
    failures = {"flaky": 1}

    async def handle(payload: bytes, headers: dict[str, str]) -> None:
        event = json.loads(payload)["event"]
        seen.append(event)
        if event == "poison":
            raise PoisonMessage("not a lifecycle event")
        if failures.get(event, 0) > 0:
            failures[event] -= 1
            raise ConnectionError("database restarting")
        assert headers["Source"] == "billing"

    subject = f"{nats_stream.prefix}.lifecycle"
    for event in ("ok", "flaky", "poison"):
        await nats_stream.js.publish(subject, json.dumps({"event": event}).encode(),
                                     headers={"Source": "billing"})
    subscriber = JetStreamSubscriber(
        nats_stream.js, nats_stream.name, subject, "lifecycle", handle,
        backoff=RetryPolicy(initial=timedelta(milliseconds=50), jitter=0),
    )
    try:
        assert await subscriber.run_once(wait=5) == 1
        assert await subscriber.run_once(wait=5) == 1
        assert await subscriber.run_once(wait=0.3) == 0
    finally:
        await subscriber.close()
    assert seen == ["ok", "flaky", "poison", "flaky"]
    consumer = await nats_stream.js.consumer_info(nats_stream.name, "lifecycle")
    assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0)


async def test_ensure_stream_is_idempotent_and_applies_new_settings(
    nats_stream: NatsStream,
) -> None:
    """Declaring an existing stream again updates it instead of failing."""
    await ensure_stream(nats_stream.js, nats_stream.name, [f"{nats_stream.prefix}.>"],
                        work_queue=True, duplicate_window=timedelta(minutes=5))
    info = await nats_stream.js.stream_info(nats_stream.name)
    assert info.config.duplicate_window == 300
    assert info.config.subjects == [f"{nats_stream.prefix}.>"]
