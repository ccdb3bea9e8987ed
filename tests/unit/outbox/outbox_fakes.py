"""An in-memory Sender for the dispatcher tests (a port's fake, not a mock)."""

from __future__ import annotations

import asyncio

from numident.outbox import DeliveryOutcome, OutboxMessage, Verdict


class FakeSender:
    """Answers from a script per message id (default: delivered) and records every call."""

    def __init__(self) -> None:
        self.script: dict[str, list[DeliveryOutcome]] = {}
        self.default = DeliveryOutcome.delivered()
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.yields = 0
        self.sent = asyncio.Event()

    def answer(self, message_id: str, *outcomes: DeliveryOutcome) -> None:
        self.script[message_id] = list(outcomes)

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        self.calls.append(message.id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(self.yields):  # give other sends the chance to overlap
                await asyncio.sleep(0)
        finally:
            self.in_flight -= 1
        queue = self.script.get(message.id)
        outcome = queue.pop(0) if queue else self.default
        if outcome.verdict is Verdict.DELIVERED:
            self.sent.set()
        return outcome
