"""An outbox's metrics: its rows by status and the oldest waiting one, read when scraped, and
the outcomes of delivery attempts, counted as they are recorded.

The status counts and the age come from the table at scrape time (two indexed aggregate
queries), so they are the same on every replica sharing the database and need no bookkeeping
in the write path. The attempt counters are per process: each replica counts what it sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from numident.outbox.store import Settlement, SqlOutbox


class OutboxCollector(Collector):
    """``<name>{status}`` and ``<name>_oldest_undelivered_seconds``, read at scrape time."""

    def __init__(self, outbox: SqlOutbox, now: Callable[[], datetime], name: str,
                 what: str) -> None:
        self.outbox = outbox
        self.now = now
        self.name = name
        self.what = what

    def describe(self) -> Iterable[Metric]:
        # Declared without collecting: registering must not query the database.
        return [GaugeMetricFamily(self.name, f"{self.what} in the outbox, by status",
                                  labels=["status"]),
                GaugeMetricFamily(f"{self.name}_oldest_undelivered_seconds", "")]

    def collect(self) -> Iterable[Metric]:
        counts = GaugeMetricFamily(self.name, f"{self.what} in the outbox, by status",
                                   labels=["status"])
        for status, count in self.outbox.counts().items():
            counts.add_metric([status], count)
        oldest = self.outbox.oldest_undelivered()
        age = GaugeMetricFamily(
            f"{self.name}_oldest_undelivered_seconds",
            f"How long the oldest of the {self.what.lower()} still to be delivered (pending or "
            "relayed) has waited since it was written or requeued; 0 when none waits",
            value=max(0.0, (self.now() - oldest).total_seconds()) if oldest else 0.0)
        return [counts, age]


class DeliveryMetrics:
    """Counts the recorded outcomes of delivery attempts: delivered, failed (to be retried)
    and dead (given up, or rejected by the receiver)."""

    def __init__(self, registry: CollectorRegistry, name: str, what: str) -> None:
        self.attempts = Counter(f"{name}_delivery_attempts", f"Delivery attempts of "
                                f"{what.lower()}, by outcome (delivered, failed, dead)",
                                ["outcome"], registry=registry)
        self.dead = Counter(f"{name}_dead_letters", f"{what} given up on by this process",
                            registry=registry)
        for outcome in ("delivered", "failed", "dead"):
            self.attempts.labels(outcome=outcome)

    def settled(self, settlements: Sequence[Settlement]) -> None:
        for settlement in settlements:
            if settlement.delivered:
                outcome = "delivered"
            elif settlement.retry_at is None:
                outcome = "dead"
                self.dead.inc()
            else:
                outcome = "failed"
            self.attempts.labels(outcome=outcome).inc()


def observe_outbox(registry: CollectorRegistry, outbox: SqlOutbox, now: Callable[[], datetime],
                   name: str, what: str) -> DeliveryMetrics:
    """Register ``outbox``'s collector on ``registry``; returns the counters for its
    dispatchers' ``on_settled``."""
    registry.register(OutboxCollector(outbox, now, name, what))
    return DeliveryMetrics(registry, name, what)
