"""The identification client: one attempt per (account, number), followed to an answer.

An attempt is a row of ``identification_attempts``; every step is written there before the
client waits, so a restarted process resumes each open attempt where it stood (``drive_open``).

The rules of the follow-up are :func:`numident.core.follow_up.next_step`; here a pending answer
(202) and a failed call are repeated with backoff from ``poll_initial_seconds`` doubling up to
``poll_max_seconds``, and the window of a question asked anew is ``unanswered_after_seconds``.

Only the attempt named on the account (``accounts.attempt_id``) may move the account; an
attempt superseded by a number change finishes without touching it.

A blocking notice that arrives while an attempt is open voids it (``invalidate``, recorded in
``invalidated_by`` so that a restart keeps it) and moves the account to
``reidentification_required``. The answer to a voided attempt, whatever it says, is not
trusted: the attempt is asked again as a new request (``Reask``) and the account is ``pending``
once more; only the answer to that request may finish it. Each reply is judged against the
attempt as stored, in the transaction that records the outcome, with the account row locked
first (the order notice intake takes too), so a notice committed while the reply was on its
way is always seen.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import anyio
from sqlalchemy import Connection, Engine, Row, bindparam, select, update

from numident.config import MessengerSettings
from numident.core.accounts import AccountState
from numident.core.backoff import backoff
from numident.core.clock import Clock
from numident.core.follow_up import (
    Answer,
    Attempt,
    Finish,
    Reask,
    Refused,
    Reply,
    Wait,
    next_step,
)
from numident.messenger.accounts import Account, AccountStore
from numident.messenger.delivery import queue_withdrawal
from numident.messenger.metrics import MessengerMetrics
from numident.messenger.operators import OperatorDirectory, OperatorLookup
from numident.messenger.tables import identification_attempts as attempts
from numident.outbox.store import SqlOutbox
from numident.storage.database import read_only, write_transaction
from numident.storage.ids import new_id

OPEN, FINISHED, SUPERSEDED = "open", "finished", "superseded"
NO_OPERATOR = "NO_OPERATOR"
OPERATOR_NOT_CONFIGURED = "OPERATOR_NOT_CONFIGURED"

# Built once (building a statement costs more than running it); values come as parameters.
_OPEN = attempts.insert()
_LOAD = select(attempts).where(attempts.c.id == bindparam("b_id"))
_LOAD_FOR_UPDATE = _LOAD.with_for_update()
_UPDATE = update(attempts).where(attempts.c.id == bindparam("b_id"))
_SUPERSEDE = update(attempts).where(attempts.c.account_id == bindparam("b_account_id"),
                                    attempts.c.status == OPEN)


def attempt_from_row(row: Row[Any]) -> Attempt:
    return Attempt(row.id, row.account_id, row.phone_number, row.identification_code,
                   row.operator_inn, row.request_id, row.status, row.started_at,
                   row.answer_due, row.next_poll_at, row.failures, row.polls, row.last_error,
                   row.invalidated_by)




class Identifications:
    """Opens attempts (in the caller's transaction) and follows them to an outcome."""

    def __init__(self, engine: Engine, store: AccountStore, lookup: OperatorLookup,
                 operators: OperatorDirectory, outbox: SqlOutbox, clock: Clock,
                 settings: MessengerSettings, metrics: MessengerMetrics) -> None:
        self.engine = engine
        self.store = store
        self.lookup = lookup
        self.operators = operators
        self.outbox = outbox
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self._running: set[str] = set()

    def _poll_wait(self, step: int) -> float:
        return backoff(step, self.settings.poll_initial_seconds, self.settings.poll_max_seconds)

    def begin(self, conn: Connection, account: Account, now: datetime) -> Account:
        """Move ``account`` (possession just proven) to ``pending`` and open its attempt.

        A number that no known operator serves, or whose operator has no configured endpoint,
        ends at once as ``refused`` with reason ``NO_OPERATOR`` / ``OPERATOR_NOT_CONFIGURED``:
        there is nobody to ask, so waiting 20 minutes would only hide the problem.
        """
        assert account.phone_number is not None
        route = self.lookup.route(account.phone_number)
        self._supersede(conn, account.account_id, now)
        if account.operator_inn and account.operator_inn != route.operator_inn:
            # The number moved to another operator: the old one must forget the usage.
            queue_withdrawal(self.outbox, conn, account.operator_inn,
                             account.identification_code, account.account_id, now)
        if route.operator_inn is None or route.operator_inn not in self.operators.endpoints:
            reason = NO_OPERATOR if route.operator_inn is None else OPERATOR_NOT_CONFIGURED
            pending = self.store.move(conn, account, AccountState.PENDING, now,
                                      operator_inn=route.operator_inn,
                                      operator_name=route.operator_name, attempt_id=None,
                                      detail={"route": route.source})
            self.metrics.finished(AccountState.REFUSED.value, 0.0)
            return self.store.move(conn, pending, AccountState.REFUSED, now, reason=reason)
        attempt_id = new_id()
        conn.execute(_OPEN, {
            "id": attempt_id, "account_id": account.account_id,
            "phone_number": account.phone_number,
            "identification_code": account.identification_code,
            "operator_inn": route.operator_inn, "status": OPEN, "started_at": now,
            "answer_due": now + timedelta(seconds=self.settings.unanswered_after_seconds),
            "next_poll_at": now, "failures": 0, "polls": 0})
        return self.store.move(conn, account, AccountState.PENDING, now,
                               operator_inn=route.operator_inn,
                               operator_name=route.operator_name, attempt_id=attempt_id,
                               detail={"route": route.source, "attempt": attempt_id})

    def supersede(self, conn: Connection, account_id: str, now: datetime) -> None:
        """Close the account's open attempts (its number changed); their answers are ignored."""
        self._supersede(conn, account_id, now)

    def open_attempt_ids(self) -> list[str]:
        with read_only(self.engine) as conn:
            return list(conn.execute(select(attempts.c.id).where(attempts.c.status == OPEN)
                                     .order_by(attempts.c.next_poll_at)).scalars())

    async def drive_open(self) -> None:
        """Follow every open attempt to its outcome, concurrently (the resume after start)."""
        ids = await anyio.to_thread.run_sync(self.open_attempt_ids)
        async with anyio.create_task_group() as group:
            for attempt_id in ids:
                group.start_soon(self.drive, attempt_id)

    async def drive(self, attempt_id: str) -> None:
        """Follow one attempt until it finishes; a no-op when it is already being followed."""
        if attempt_id in self._running:
            return
        self._running.add(attempt_id)
        try:
            while True:
                attempt = await anyio.to_thread.run_sync(self._load, attempt_id)
                if attempt is None or attempt.status != OPEN:
                    return
                wait = (attempt.next_poll_at - self.clock.now()).total_seconds()
                if wait > 0:
                    await self.clock.sleep(wait)
                reply = await self._ask(attempt)
                step = await anyio.to_thread.run_sync(self._record, attempt, reply)
                if step is None or isinstance(step, Finish):
                    return
        finally:
            self._running.discard(attempt_id)

    async def _ask(self, attempt: Attempt) -> Reply:
        client = self.operators.client(attempt.operator_inn)
        if client is None:  # the configuration changed since the attempt opened
            return Refused(OPERATOR_NOT_CONFIGURED)
        if attempt.request_id is None:
            return await client.submit(attempt.phone_number, attempt.identification_code)
        return await client.fetch(attempt.request_id)

    def _load(self, attempt_id: str) -> Attempt | None:
        with read_only(self.engine) as conn:
            row = conn.execute(_LOAD, {"b_id": attempt_id}).first()
        return attempt_from_row(row) if row is not None else None

    def _record(self, asked: Attempt, reply: Reply) -> Finish | Wait | Reask | None:
        """Judge ``reply`` against the attempt as stored now and record the step.

        Returns None when the attempt is no longer open (superseded, or finished elsewhere).
        """
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            account = self.store.get(conn, asked.account_id, for_update=True)
            row = conn.execute(_LOAD_FOR_UPDATE, {"b_id": asked.id}).first()
            if row is None or row.status != OPEN:
                return None
            step = next_step(attempt_from_row(row), reply, now, wait=self._poll_wait,
                             window=self.settings.unanswered_after_seconds)
            in_force = account is not None and account.attempt_id == asked.id
            if isinstance(step, Finish):
                request_id = reply.request_id if isinstance(reply, Answer) else row.request_id
                conn.execute(_UPDATE, {
                    "b_id": asked.id, "status": FINISHED, "outcome": step.outcome.value,
                    "reason": step.reason, "finished_at": now, "request_id": request_id})
                if not in_force or account is None or account.state is not AccountState.PENDING:
                    return step
                self.store.move(conn, account, step.outcome, now, reason=step.reason,
                                detail={"attempt": asked.id, "requestId": request_id})
            else:
                self._save(conn, step.attempt)
                if (isinstance(step, Reask) and in_force and account is not None
                        and account.state is AccountState.REIDENTIFICATION_REQUIRED):
                    self.store.move(conn, account, AccountState.PENDING, now,
                                    reason=account.reason,
                                    detail={"attempt": asked.id, "reask": step.notice,
                                            "voided": step.voided.value})
        if isinstance(step, Finish):
            self.metrics.finished(step.outcome.value, (now - asked.started_at).total_seconds())
        return step

    @staticmethod
    def _save(conn: Connection, attempt: Attempt) -> None:
        values = {"b_id": attempt.id, "request_id": attempt.request_id,
                  "answer_due": attempt.answer_due, "next_poll_at": attempt.next_poll_at,
                  "failures": attempt.failures, "polls": attempt.polls,
                  "last_error": attempt.last_error, "invalidated_by": attempt.invalidated_by}
        if attempt.invalidated_by is None:  # not voided (any more): no time of voiding either
            values["invalidated_at"] = None
        conn.execute(_UPDATE, values)

    def _supersede(self, conn: Connection, account_id: str, now: datetime) -> None:
        conn.execute(_SUPERSEDE, {"b_account_id": account_id, "status": SUPERSEDED,
                                  "finished_at": now})


def invalidate(conn: Connection, attempt_id: str, notice_id: str, now: datetime) -> bool:
    """Void the question in flight of open attempt ``attempt_id`` (a notice overtook it).

    In the caller's transaction; True when the attempt was open. Its answer will be asked again.
    """
    return bool(conn.execute(update(attempts).where(
        attempts.c.id == attempt_id, attempts.c.status == OPEN).values(
        invalidated_by=notice_id, invalidated_at=now)).rowcount)


class IdentificationWorker:
    """Runs attempts in the background: those open at start, those submitted, and a periodic
    rescan (attempts opened by another process, e.g. the CLI)."""

    def __init__(self, identifications: Identifications, clock: Clock,
                 rescan_seconds: float) -> None:
        self._identifications = identifications
        self._clock = clock
        self._rescan = rescan_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, attempt_id: str) -> None:
        """Start following ``attempt_id`` now (call from the event loop's thread)."""
        task = asyncio.get_running_loop().create_task(self._identifications.drive(attempt_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                for attempt_id in await anyio.to_thread.run_sync(
                        self._identifications.open_attempt_ids):
                    self.submit(attempt_id)
                # Real time on purpose: a FakeClock's instant sleep would make this spin.
                with anyio.move_on_after(self._rescan):
                    await stop.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
