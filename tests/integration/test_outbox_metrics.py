"""An outbox's metrics on SQLite and PostgreSQL: rows by status and the oldest waiting one, read
at scrape time, and the outcomes the dispatcher records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from outbox_fixtures import T0, commit, message, outbox_fixture  # noqa: F401
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import DBAPIError

from numident.core.clock import FakeClock
from numident.outbox import SqlOutbox
from numident.outbox.dispatcher import DeliveryOutcome, Dispatcher
from numident.outbox.metrics import observe_outbox
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import OutboxMessage


class ScriptedSender:
    """Answers each message with the outcome scripted for its id."""

    def __init__(self, outcomes: dict[str, DeliveryOutcome]) -> None:
        self.outcomes = outcomes

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        return self.outcomes[message.id]


@pytest.mark.anyio
async def test_status_counts_age_and_outcomes_follow_the_outbox(outbox: SqlOutbox) -> None:
    """Two delivered, one to be retried and one rejected: the gauges read 2 delivered, 1
    pending and 1 dead, the oldest undelivered is the retried one, and the counters hold one
    outcome per attempt; a requeued dead letter waits from its requeue."""
    commit(outbox, *(message(n, created_at=T0 + timedelta(minutes=n)) for n in range(4)))
    clock = FakeClock(T0 + timedelta(minutes=10))
    registry = CollectorRegistry()
    metrics = observe_outbox(registry, outbox, clock.now, "numident_test", "Messages")
    sender = ScriptedSender({
        "evt-00000": DeliveryOutcome.delivered(), "evt-00001": DeliveryOutcome.retry("503"),
        "evt-00002": DeliveryOutcome.reject("410"), "evt-00003": DeliveryOutcome.delivered()})
    dispatcher = Dispatcher(outbox, sender, clock, RetryPolicy(jitter=0))
    dispatcher.on_settled = metrics.settled
    assert registry.get_sample_value("numident_test", {"status": "pending"}) == 4
    assert registry.get_sample_value("numident_test_oldest_undelivered_seconds") == 600

    assert await dispatcher.run_once() == 2

    def gauge(status: str) -> float | None:
        return registry.get_sample_value("numident_test", {"status": status})

    assert (gauge("delivered"), gauge("pending"), gauge("dead"), gauge("relayed")) == (2, 1, 1, 0)
    assert registry.get_sample_value("numident_test_oldest_undelivered_seconds") == 540

    def attempts(outcome: str) -> float | None:
        return registry.get_sample_value("numident_test_delivery_attempts_total",
                                         {"outcome": outcome})

    assert (attempts("delivered"), attempts("failed"), attempts("dead")) == (2, 1, 1)
    assert registry.get_sample_value("numident_test_dead_letters_total") == 1

    outbox.requeue_dead("evt-00002", clock.now())
    assert outbox.mark_delivered("evt-00001", clock.now())
    clock.advance(300)
    assert registry.get_sample_value("numident_test_oldest_undelivered_seconds") == 300
    outbox.mark_delivered("evt-00002", clock.now())
    assert registry.get_sample_value("numident_test_oldest_undelivered_seconds") == 0
    assert gauge("delivered") == 4


def test_registering_the_collector_reads_nothing(outbox: SqlOutbox) -> None:
    """The collector declares its metrics without a query: a registry built before the tables
    exist (or while the database is down) still comes up."""
    outbox.table.drop(outbox.engine)
    registry = CollectorRegistry()
    observe_outbox(registry, outbox, FakeClock().now, "numident_test", "Messages")
    with pytest.raises(DBAPIError, match="outbox"):
        registry.get_sample_value("numident_test", {"status": "pending"})
