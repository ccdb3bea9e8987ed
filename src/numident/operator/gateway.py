"""The operator gateway's use cases behind one object: what every entry point calls.

The organizers' HTTP API, the staff's admin API and console, the CLI and the NATS intake all
come here; none of them reaches for the engine or the modules behind it.

Every request first passes the organizer's limits (:mod:`numident.operator.organizer_limits`).
It owns the admission rule of the deferred mode (SPEC rule 3): a request is accepted only when
the queue, served earliest-deadline-first at the drain rate the replicas have measured, can
still answer it before its deadline; otherwise the caller gets 429 at once, with ``Retry-After``
the time until it would fit. Requests whose deadline passed (after downtime) are settled as
``expired`` apart from the queue, so they never delay work that can still make its deadline.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
import structlog
from sqlalchemy import Connection, Engine

from numident.config import OperatorSettings
from numident.core.admission import Admission, DrainMeter, admit
from numident.core.clock import Clock
from numident.core.identification import RequestStatus
from numident.core.notices import NoticeType
from numident.errors import NotFound, TooManyRequests
from numident.operator import authorization, drain, events, identification, organizers
from numident.operator.authorization import Authentication
from numident.operator.group_commit import GroupCommit
from numident.operator.identification import Item, Job, Organizer, RequestView
from numident.operator.metrics import GatewayMetrics
from numident.operator.organizer_limits import CAPACITY, OrganizerLimits
from numident.operator.organizers import Limits, OrganizerRecord
from numident.outbox.loop import WakeableLoop
from numident.outbox.store import OutboxRecord, SqlOutbox

log = structlog.get_logger(__name__)

DATABASE_ALLOWANCE = 0.05
"""Seconds per answer assumed for the database, before the first answers are measured."""
RATE_REFRESH = timedelta(seconds=1)
"""How often a replica renews its published rate and reads the others'."""
QUEUE_REUSE = timedelta(milliseconds=100)
"""How long the queue read for one refusal may decide the next refusals."""
POSTGRESQL_WRITERS = 4
"""Rounds of answers written at once on PostgreSQL (see numident.operator.group_commit)."""


@dataclass
class Gateway:
    engine: Engine
    clock: Clock
    settings: OperatorSettings
    metrics: GatewayMetrics
    notice_source: str
    outbox: SqlOutbox
    """The gateway's outbox, as the composition root built it (once)."""
    on_notice: Callable[[], None] = lambda: None
    """Called after notices were committed, so the dispatcher sends them at once."""
    lifecycle: events.LifecycleHandlers = field(default_factory=events.LifecycleHandlers)
    """What else a lifecycle event changes, in its transaction (see :mod:`.events`)."""

    def __post_init__(self) -> None:
        self._pending = identification.count_pending(self.engine)
        self._lock = threading.Lock()
        self._queue = WakeableLoop(self.clock)
        self.replica_id = str(uuid.uuid4())
        self.meter = DrainMeter(self.settings.workers,
                                self.settings.check_seconds + DATABASE_ALLOWANCE)
        self._others = 0.0
        self._others_read: datetime | None = None
        self._published: datetime | None = None
        self._refused_on: tuple[datetime, drain.Queue] | None = None
        self.limits = OrganizerLimits(self.engine, self.clock, self.settings.limits,
                                      self.metrics)
        self.metrics.pending.set(self._pending)
        self._commits: GroupCommit[Job, list[RequestView]] = GroupCommit(
            self._answer_together, size=lambda job: len(job.items),
            writers=1 if self.engine.dialect.name == "sqlite" else POSTGRESQL_WRITERS)

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def deadline(self) -> timedelta:
        return timedelta(seconds=self.settings.answer_deadline_seconds)

    def drain_rate(self, now: datetime) -> float:
        """Answers per second of all live replicas: this one's measured rate plus the others'
        as published in the database (read at most once per ``RATE_REFRESH``)."""
        if self._others_read is None or now - self._others_read >= RATE_REFRESH:
            self._others = drain.others(self.engine, self.replica_id, now)
            self._others_read = now
        return self.meter.answers_per_second + self._others

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

    async def submit(self, organizer: Organizer, items: Sequence[Item]) -> list[RequestView]:
        """:meth:`identify` for the event loop: answers now are group-committed with the
        requests that arrive meanwhile (:mod:`numident.operator.group_commit`), one commit
        for all of them, each returned once its own answer is durable."""
        if self.settings.deferred:
            return await anyio.to_thread.run_sync(self.identify, organizer, items)
        admission = self.limits.admit(organizer, len(items))
        try:
            views = await self._commits.submit(
                Job(organizer, items, self.clock.now(), admission.charge))
        finally:
            if admission.refused:  # audited in a transaction of its own
                await anyio.to_thread.run_sync(self.limits.settle, admission)
        now = self.clock.now()
        for view in views:
            self.metrics.answered(str(view.result), view.received_at, now)
        return views

    def _answer_together(self, jobs: Sequence[Job]) -> list[list[RequestView] | Exception]:
        return identification.answer_together(self.engine, jobs, self.clock.now(),
                                              self.deadline)

    def _identify(self, organizer: Organizer, items: Sequence[Item],
                  charge: Callable[[Connection], None]) -> list[RequestView]:
        now = self.clock.now()
        if not self.settings.deferred:
            views = identification.answer_now(self.engine, organizer, items, now,
                                              self.deadline, within=charge)
            for view in views:
                self.metrics.answered(str(view.result), view.received_at, now)
            return views
        with self._lock:
            # Under overload most requests are refused: a refusal may rest on the queue read
            # for the last refusal, if recent (the queue it saw has only drained since, so the
            # refusal errs on the safe side); an acceptance always reads the queue afresh.
            decision = None
            if self._refused_on is not None and now - self._refused_on[0] < QUEUE_REUSE:
                queue = self._refused_on[1]
                decision = self._admit(queue, len(items), now)
            if decision is None or decision.accepted:
                queue = drain.queue(self.engine, now)
                decision = self._admit(queue, len(items), now)
            if not decision.accepted:
                if self._refused_on is None or self._refused_on[1] is not queue:
                    self._refused_on = (now, queue)
                self._pending = queue.pending
                self.metrics.refused.inc(len(items))
                self.limits.refused(organizer, CAPACITY, None, len(items), now)
                raise TooManyRequests("the gateway cannot answer more requests within 20 "
                                      "minutes now", retry_after=decision.retry_after)
            self._refused_on = None
            views = identification.accept_deferred(self.engine, organizer, items, now,
                                                   self.deadline, within=charge)
            self._pending = identification.count_pending(self.engine)
        self.metrics.pending.set(self._pending)
        self._queue.wake()
        return views

    def _admit(self, queue: drain.Queue, items: int, now: datetime) -> Admission:
        return admit(ahead=queue.in_time, items=items, answers_per_second=self.drain_rate(now),
                     deadline=self.deadline, pending=queue.pending,
                     max_pending=self.settings.max_pending)

    def record_event(self, kind: NoticeType, phone_number: str, *, source: str,
                     occurred_at: datetime | None = None, event_id: str | None = None,
                     new_contract_id: str | None = None) -> events.EventOutcome:
        now = self.clock.now()
        outcome = events.record_event(self.engine, kind, phone_number,
                                      occurred_at=occurred_at or now, recorded_at=now,
                                      source=source, notice_source=self.notice_source,
                                      event_id=event_id, new_contract_id=new_contract_id,
                                      handlers=self.lifecycle)
        if not outcome.duplicate:
            self.on_notice()  # usage notices, or SIM swap subscription events
        return outcome

    def request(self, organizer: Organizer, request_id: str) -> RequestView:
        """The organizer's own request (another organizer's is not found)."""
        return identification.get(self.engine, organizer, request_id)

    def withdraw(self, organizer: Organizer, identification_code: str) -> int:
        """End the organizer's active usages of ``identification_code``; 0 when none were."""
        return identification.withdraw(self.engine, organizer, identification_code,
                                       self.clock.now())

    def organizer(self, name: str) -> OrganizerRecord:
        return organizers.find(self.engine, name)

    def register_organizer(self, name: str, notice_url: str, public_key: str, *,
                           replace: bool = False,
                           scopes: Sequence[str] = organizers.DEFAULT_SCOPES,
                           redirect_uris: Sequence[str] = (),
                           limits: Limits | None = None) -> OrganizerRecord:
        """Register (or with ``replace`` update) an organizer; its limits apply at once."""
        record = organizers.add_organizer(self.engine, name, notice_url, public_key,
                                          self.clock.now(), replace=replace, scopes=scopes,
                                          redirect_uris=redirect_uris,
                                          limits=limits or Limits())
        self.limits.forget(record.id)
        return record

    def set_limits(self, name: str, limits: Limits) -> OrganizerRecord:
        """Store the organizer's own limits (``None``: the default); they apply at once here
        and within a second on the other replicas."""
        organizers.set_limits(self.engine, name, limits)
        record = organizers.find(self.engine, name)
        self.limits.forget(record.id)
        return record

    def set_session(self, session_id: str, phone_number: str,
                    authentication: Authentication) -> None:
        """Tell the gateway which line a network session belongs to."""
        authorization.set_session(self.engine, session_id, phone_number, authentication,
                                  self.clock.now())

    def end_session(self, session_id: str) -> None:
        authorization.end_session(self.engine, session_id)

    def notices(self, *, status: str | None = None, organizer: str | None = None,
                limit: int = 100) -> tuple[dict[str, int], list[OutboxRecord]]:
        """The outbox's counts by status, and its messages newest first."""
        return self.outbox.counts(), self.outbox.list(status=status, owner=organizer,
                                                      limit=limit)

    def notice(self, notice_id: str) -> OutboxRecord:
        """One message of the outbox (NotFound when there is none)."""
        found = self.outbox.get(notice_id)
        if found is None:
            raise NotFound(f"no notice {notice_id}", code="NOTICE_NOT_FOUND")
        return found

    def all_organizers(self) -> list[OrganizerRecord]:
        return organizers.all_organizers(self.engine)

    def retry_notice(self, notice_id: str) -> int:
        """Send the dead letter ``notice_id`` again, at once; 0 when it is not a dead letter
        (the admin API's, the console's and the CLI's retry)."""
        requeued = self.outbox.requeue_dead(notice_id, self.clock.now())
        if requeued:
            self.on_notice()
        return requeued

    async def answer_deferred(self, stop: asyncio.Event, idle_interval: float = 1.0) -> None:
        """Serve the deferred queue earliest-deadline-first with ``workers`` in parallel.

        The queue lives in the database, so requests accepted before a restart are answered
        after it, still in deadline order; those whose deadline passed meanwhile are expired.
        """
        await self._queue.run(self.answer_due_batch, stop, idle_interval)

    async def answer_due_batch(self) -> bool:
        """Expire overdue requests, then answer the next batch of those still in time.

        Returns True when more may be waiting. The batch's real duration feeds the drain
        rate that admission uses, and the rate is published for the other replicas.
        """
        batch = self.settings.workers * 4
        started = self.clock.now()
        if self.settings.deferred:
            await self._publish(started)
        if not self._pending and not await anyio.to_thread.run_sync(
                identification.count_pending, self.engine):
            return False  # an idle round takes no write lock
        expired = await anyio.to_thread.run_sync(identification.expire_overdue, self.engine,
                                                 started)
        self.metrics.expired.inc(len(expired))
        due = await anyio.to_thread.run_sync(identification.claim_pending, self.engine, batch,
                                             self.settings.lease_seconds, started)
        answered: list[RequestView] = []
        limiter = anyio.CapacityLimiter(self.settings.workers)
        async with anyio.create_task_group() as group:
            for request_id, _deadline in due:
                group.start_soon(self._answer_one, request_id, limiter, answered)
        finished = self.clock.now()
        in_time = [v for v in answered if v.status is RequestStatus.ANSWERED]
        self.meter.record(started, finished, len(in_time))
        self.metrics.expired.inc(len(answered) - len(in_time))
        self._pending = await anyio.to_thread.run_sync(identification.count_pending,
                                                       self.engine)
        self.metrics.pending.set(self._pending)
        return len(due) == batch

    async def _publish(self, now: datetime) -> None:
        if self._published is not None and now - self._published < RATE_REFRESH:
            return
        # Valid for a few batch times, so that a replica in a long batch still counts and a
        # killed one stops counting soon.
        valid = max(10.0, 4 * self.meter.batch_seconds)
        await anyio.to_thread.run_sync(drain.publish, self.engine, self.replica_id,
                                       self.meter.answers_per_second,
                                       now + timedelta(seconds=valid))
        self._published = now

    async def _answer_one(self, request_id: str, limiter: anyio.CapacityLimiter,
                          answered: list[RequestView]) -> None:
        async with limiter:
            # The registry check of an operator whose billing system is slow; the
            # SQL lookup itself is immediate.
            if self.settings.check_seconds:
                await self.clock.sleep(self.settings.check_seconds)
            views = await anyio.to_thread.run_sync(
                identification.answer_pending, self.engine, [request_id], self.clock.now())
        for view in views:
            if view.status is RequestStatus.ANSWERED:
                self.metrics.answered(str(view.result), view.received_at,
                                      view.answered_at or self.clock.now())
        answered.extend(views)
