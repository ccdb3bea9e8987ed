"""The operator gateway's metrics: answer times against the 20-minute rule, queue, notices."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from numident.core.identification import ANSWER_DEADLINE


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.answer_seconds = Histogram(
            "numident_answer_seconds", "Time from receipt of a request to its answer",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 600, 900,
                     1200, 1800), registry=self.registry)
        self.answers = Counter("numident_answers_total", "Answers given, by result",
                               ["result"], registry=self.registry)
        self.late = Counter("numident_answers_late_total",
                            "Answers given later than 20 minutes after receipt",
                            registry=self.registry)
        self.refused = Counter("numident_requests_refused_total",
                               "Requests refused with 429 because they could not be answered "
                               "in time", registry=self.registry)
        self.expired = Counter("numident_requests_expired_total",
                               "Deferred requests not answered by their deadline (expired)",
                               registry=self.registry)
        self.limited = Counter("numident_limited_items_total",
                               "Identification items refused by an organizer's rate limit or "
                               "daily quota", ["organizer", "limit"], registry=self.registry)
        self.pending = Gauge("numident_pending_requests", "Deferred requests awaiting an answer",
                             registry=self.registry)

    def answered(self, result: str, received_at: datetime, answered_at: datetime) -> None:
        elapsed = answered_at - received_at
        self.answers.labels(result=result).inc()
        self.answer_seconds.observe(elapsed.total_seconds())
        if elapsed > ANSWER_DEADLINE:
            self.late.inc()
