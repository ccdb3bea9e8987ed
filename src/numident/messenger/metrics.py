"""The messenger service's Prometheus metrics, on a registry of its own (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class MessengerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.identifications = Counter(
            "numident_messenger_identifications", "Finished identifications by outcome",
            ["outcome"], registry=self.registry)
        self.identification_seconds = Histogram(
            "numident_messenger_identification_seconds",
            "Time from the first request to an operator to the final outcome",
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 600, 1200, 1800), registry=self.registry)
        self.notices = Counter(
            "numident_messenger_notices", "Notices received, by type and whether they were new",
            ["type", "duplicate"], registry=self.registry)
        self.code_sends = Counter(
            "numident_messenger_code_sends", "Codes handed to a provider (sent) or not "
            "(failed: an error or a timeout), by channel", ["channel", "outcome"],
            registry=self.registry)
        self.code_refusals = Counter(
            "numident_messenger_code_refusals", "Code requests refused before any send, by "
            "reason (a budget, the range circuit, the resend throttle, not a mobile number)",
            ["reason"], registry=self.registry)

    def finished(self, outcome: str, seconds: float) -> None:
        self.identifications.labels(outcome=outcome).inc()
        self.identification_seconds.observe(max(0.0, seconds))
