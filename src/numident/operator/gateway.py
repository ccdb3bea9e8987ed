"""The operator gateway's use cases behind one object: what the HTTP API and the CLI call.

Every request first passes the organizer's limits (:mod:`numident.operator.organizer_limits`).
It owns the admission rule of the deferred mode: a request is accepted only when the queue,
served earliest-deadline-first, can still answer it before its 20-minute deadline; otherwise
the caller gets 429 with ``Retry-After`` at once (SPEC rule 3).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import anyio
import structlog
from sqlalchemy import Connection, Engine

from numident.config import OperatorSettings
from numident.core.clock import Clock
from numident.core.identification import admit
from numident.core.notices import NoticeType
from numident.errors import TooManyRequests
from numident.operator import events, identification
from numident.operator.identification import Item, Organizer, RequestView
from numident.operator.metrics import GatewayMetrics
from numident.operator.organizer_limits import OrganizerLimits
from numident.outbox.loop import WakeableLoop

log = structlog.get_logger(__name__)


@dataclass
class Gateway:
    engine: Engine
    clock: Clock
    settings: OperatorSettings
    metrics: GatewayMetrics
    notice_source: str
    on_notice: Callable[[], None] = lambda: None
    """Called after notices were committed, so the dispatcher sends them at once."""

    def __post_init__(self) -> None:
        self._pending = identification.count_pending(self.engine)
        self._lock = threading.Lock()
        self._queue = WakeableLoop(self.clock)
        self.limits = OrganizerLimits(self.engine, self.clock, self.settings.limits,
                                      self.metrics)
        self.metrics.pending.set(self._pending)

    @property
    def pending(self) -> int:
        return self._pending

    def identify(self, organizer: Organizer, items: Sequence[Item]) -> list[RequestView]:
        """Answer ``items`` now, or queue them in deferred mode (429 when they cannot fit).

        The organizer's limits are checked first; the items count against its daily quota in
        the transaction that answers (or queues) them, so a request refused or failed after
        that costs nothing.
        """
        admission = self.limits.admit(organizer, len(items))
        try:
            return self._identify(organizer, items, admission.charge)
        finally:
            self.limits.settle(admission)

    def _identify(self, organizer: Organizer, items: Sequence[Item],
                  charge: Callable[[Connection], None]) -> list[RequestView]:
        now = self.clock.now()
        if not self.settings.deferred:
            views = identification.answer_now(self.engine, organizer, items, now,
                                              within=charge)
            for view in views:
                self.metrics.answered(str(view.result), view.received_at, now)
            return views
        with self._lock:
            decision = admit(now=now, queued=self._pending + len(items) - 1,
                             seconds_per_check=max(self.settings.check_seconds, 0.001),
                             workers=self.settings.workers, max_pending=self.settings.max_pending)
            if not decision.accepted:
                self.metrics.refused.inc(len(items))
                raise TooManyRequests("the gateway cannot answer more requests within 20 "
                                      "minutes now", retry_after=decision.retry_after)
            views = identification.accept_deferred(self.engine, organizer, items, now,
                                                   within=charge)
            self._pending = identification.count_pending(self.engine)
        self.metrics.pending.set(self._pending)
        self._queue.wake()
        return views

    def record_event(self, kind: NoticeType, phone_number: str, *, source: str,
                     occurred_at: datetime | None = None, event_id: str | None = None,
                     new_contract_id: str | None = None) -> events.EventOutcome:
        now = self.clock.now()
        outcome = events.record_event(self.engine, kind, phone_number,
                                      occurred_at=occurred_at or now, recorded_at=now,
                                      source=source, notice_source=self.notice_source,
                                      event_id=event_id, new_contract_id=new_contract_id)
        if not outcome.duplicate:
            self.on_notice()  # usage notices, or SIM swap subscription events
        return outcome

    async def answer_deferred(self, stop: asyncio.Event, idle_interval: float = 1.0) -> None:
        """Serve the deferred queue earliest-deadline-first with ``workers`` in parallel.

        The queue lives in the database, so requests accepted before a restart are answered
        after it, still in deadline order.
        """
        await self._queue.run(self.answer_due_batch, stop, idle_interval)

    async def answer_due_batch(self) -> bool:
        """Answer the next batch of pending requests; True when more may be waiting."""
        batch = self.settings.workers * 4
        due = await anyio.to_thread.run_sync(identification.due_pending, self.engine, batch)
        limiter = anyio.CapacityLimiter(self.settings.workers)
        async with anyio.create_task_group() as group:
            for request_id, _deadline in due:
                group.start_soon(self._answer_one, request_id, limiter)
        return len(due) == batch

    async def _answer_one(self, request_id: str, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            # The registry check of an operator whose billing system is slow; the
            # SQL lookup itself is immediate.
            if self.settings.check_seconds:
                await self.clock.sleep(self.settings.check_seconds)
            views = await anyio.to_thread.run_sync(
                identification.answer_pending, self.engine, [request_id], self.clock.now())
        for view in views:
            self.metrics.answered(str(view.result), view.received_at,
                                  view.answered_at or self.clock.now())
        with self._lock:
            self._pending = max(0, self._pending - len(views))
        self.metrics.pending.set(self._pending)
