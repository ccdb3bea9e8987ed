"""The durable outbox: messages written in the caller's transaction, leased out for delivery.

``add`` takes the caller's connection so that a notice commits or rolls back together with the
event that caused it (SPEC rule 7). Everything else runs in the outbox's own short transactions.

Claiming is the concurrency contract: a due row is handed to one claimer at a time for
``lease_seconds``. On PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``
so replicas claim disjoint sets without waiting on each other; on SQLite the engine opens every
transaction with ``BEGIN IMMEDIATE``, which serialises claimers. A claimer that dies keeps its
rows only until the lease expires; then they are claimed again (at-least-once delivery).

``on_settled`` lets the owner of an outbox record final outcomes (a delivery, a dead letter) in
the very transaction that settles them, e.g. in its audit trail: each outcome is reported
exactly once, however many dispatchers report the same attempt.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Row,
    Table,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from numident.errors import Conflict
from numident.outbox.tables import DEAD, DELIVERED, ERROR_TEXT_LIMIT, PENDING, RELAYED, STATUSES
from numident.storage.database import read_only, write_transaction
from numident.storage.types import UtcDateTime


@dataclass(frozen=True, kw_only=True)
class OutboxMessage:
    """One message to deliver: ``payload`` is POSTed to ``destination`` as ``content_type``.

    ``id`` is the event id, unique across the outbox; receivers deduplicate by it.
    ``owner`` (e.g. the organizer's name) only serves listing and filtering.
    """

    id: str
    destination: str
    payload: bytes
    created_at: datetime
    content_type: str = "application/json"
    kind: str = "notice"
    owner: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutboxRecord(OutboxMessage):
    """A message as stored, with its delivery history."""

    status: str
    attempts: int
    requeues: int = 0
    next_attempt_at: datetime
    requeued_at: datetime | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None
    lease_until: datetime | None = None

    @property
    def retry_window_start(self) -> datetime:
        """When the give-up window opened: creation, or the last requeue by staff."""
        return self.requeued_at or self.created_at


@dataclass(frozen=True)
class Settlement:
    """The recorded result of one attempt; ``retry_at=None`` on failure makes a dead letter."""

    id: str
    now: datetime
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None
    attempts: int | None = None
    relayed: bool = False


@dataclass(frozen=True)
class Settled:
    """A final outcome as settled: ``status`` is DELIVERED or DEAD, reached at ``at``."""

    id: str
    kind: str
    owner: str | None
    created_at: datetime
    status: str
    at: datetime
    attempts: int


SettledHook = Callable[[Connection, Sequence[Settled]], None]


def enqueue(connection: Connection, table: Table, messages: Iterable[OutboxMessage]) -> None:
    """Insert ``messages`` into the outbox ``table`` in ``connection``'s open transaction, due
    at once; Conflict on a reused id. Writing needs no store: a message is one row, committed
    with the change it announces, and the store that claims and settles it may live in
    another process."""
    rows = [_insert_values(m) for m in messages]
    if not rows:
        return
    try:
        connection.execute(table.insert(), rows)
    except IntegrityError as exc:
        raise Conflict("an outbox message with this id already exists") from exc


class SqlOutbox:
    """The outbox on one SQLAlchemy ``engine`` (SQLite or PostgreSQL) and one outbox ``table``.

    ``on_settled`` is called inside the settling transaction with the messages that it
    delivered or made dead letters (never with retries, nor with rows another claimer had
    settled already).
    """

    def __init__(self, engine: Engine, table: Table, *,
                 on_settled: SettledHook | None = None) -> None:
        self.engine = engine
        self.table = table
        self.on_settled = on_settled

    # -- writing, inside the caller's transaction -------------------------------------------

    def add(self, connection: Connection, message: OutboxMessage) -> None:
        """Insert ``message`` in ``connection``'s open transaction; Conflict on a reused id."""
        self.add_many(connection, [message])

    def add_many(self, connection: Connection, messages: Iterable[OutboxMessage]) -> None:
        """Insert ``messages`` in ``connection``'s open transaction, due at once."""
        enqueue(connection, self.table, messages)

    # -- claiming and settling ---------------------------------------------------------------

    def claim_due(
        self, now: datetime, limit: int, lease_seconds: float, *, count_attempt: bool = True
    ) -> builtins.list[OutboxRecord]:
        """Lease up to ``limit`` due pending rows for ``lease_seconds``, oldest due first.

        A due row is pending, has ``next_attempt_at <= now`` and no live lease. The returned
        records show ``attempts`` including this one when ``count_attempt`` (the dispatcher's
        case: a claim is an attempt, so a message that crashes its sender still dies one day).
        """
        t = self.table
        candidates = (
            select(t.c.id)
            .where(
                t.c.status == PENDING,
                t.c.next_attempt_at <= now,
                or_(t.c.lease_until.is_(None), t.c.lease_until <= now),
            )
            .order_by(t.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        )
        values: dict[str, Any] = {"lease_until": now + timedelta(seconds=lease_seconds)}
        if count_attempt:
            values["attempts"] = t.c.attempts + 1
            values["last_attempt_at"] = now
        statement = (
            update(t).where(t.c.id.in_(candidates.scalar_subquery())).values(**values)
            .returning(*t.c)
        )
        with write_transaction(self.engine) as connection:
            rows = connection.execute(statement).all()
        return sorted((_record(r) for r in rows), key=lambda r: (r.next_attempt_at, r.id))

    def mark_delivered(self, message_id: str, now: datetime) -> bool:
        """Record delivery; False if the row was not pending or relayed (unknown, dead, done)."""
        return self.settle([Settlement(message_id, now, delivered=True)]) == 1

    def mark_failed(
        self, message_id: str, now: datetime, error: str, retry_at: datetime | None
    ) -> bool:
        """Record a failed attempt: pending again at ``retry_at``, or dead when it is None."""
        return self.settle([Settlement(message_id, now, False, error, retry_at)]) == 1

    def mark_relayed(self, message_ids: Sequence[str]) -> int:
        """Hand pending rows over to JetStream: the SQL dispatcher will not send them again."""
        if not message_ids:
            return 0
        t = self.table
        statement = (
            update(t).where(t.c.id.in_(message_ids), t.c.status == PENDING)
            .values(status=RELAYED, lease_until=None)
        )
        with write_transaction(self.engine) as connection:
            return connection.execute(statement).rowcount

    def settle(self, settlements: Sequence[Settlement]) -> int:
        """Record many attempts in one transaction; returns how many rows changed.

        Only pending or relayed rows change, so a late report from a dispatcher whose lease
        expired can never undo a delivery or revive a dead letter. ``relayed=True`` keeps a
        retried row out of the SQL dispatcher's hands (JetStream redelivers it).
        """
        t = self.table
        # Spelled with OR: an expanding IN cannot be used with executemany.
        open_rows = or_(t.c.status == PENDING, t.c.status == RELAYED)
        # Deliveries, the common case, go in one executemany: a batch costs one round trip.
        delivered = [
            {"b_id": s.id, "b_now": s.now, "b_attempts": s.attempts}
            for s in settlements if s.delivered
        ]
        changed = 0
        with write_transaction(self.engine) as connection:
            # The rows still open, locked until commit: these are the outcomes this call settles.
            open_before = self._open_rows(connection, settlements) if self.on_settled else {}
            if delivered:
                statement = (
                    update(t).where(t.c.id == bindparam("b_id"), open_rows)
                    .values(status=DELIVERED, delivered_at=bindparam("b_now"),
                            last_attempt_at=bindparam("b_now"), lease_until=None,
                            attempts=func.coalesce(bindparam("b_attempts", type_=Integer),
                                                   t.c.attempts))
                )
                changed += connection.execute(statement, delivered).rowcount
            for s in settlements:
                if s.delivered:
                    continue
                values: dict[str, Any] = {
                    "lease_until": None, "last_attempt_at": s.now,
                    "last_error": (s.error or "")[:ERROR_TEXT_LIMIT],
                }
                if s.attempts is not None:
                    values["attempts"] = s.attempts
                if s.retry_at is None:
                    values["status"] = DEAD
                else:
                    values["next_attempt_at"] = s.retry_at
                    values["status"] = RELAYED if s.relayed else case(
                        (t.c.status == RELAYED, RELAYED), else_=PENDING
                    )
                statement = update(t).where(t.c.id == s.id, open_rows).values(**values)
                changed += connection.execute(statement).rowcount
            if self.on_settled is not None:
                final = [_settled(open_before[s.id], s) for s in settlements
                         if s.id in open_before and (s.delivered or s.retry_at is None)]
                if final:
                    self.on_settled(connection, final)
        return changed

    def _open_rows(self, connection: Connection,
                   settlements: Sequence[Settlement]) -> dict[str, Any]:
        t = self.table
        rows = connection.execute(
            select(t.c.id, t.c.kind, t.c.owner, t.c.created_at, t.c.attempts)
            .where(t.c.id.in_([s.id for s in settlements]), t.c.status.in_((PENDING, RELAYED)))
            .with_for_update()).all()
        return {r.id: r for r in rows}

    # -- staff operations --------------------------------------------------------------------

    def requeue_dead(
        self, message_id: str | None, now: datetime, *, owner: str | None = None
    ) -> int:
        """Make dead letters pending again, due ``now``, with a fresh give-up window.

        ``message_id=None`` requeues every dead letter (of ``owner``, when given).
        Returns the number of rows requeued.
        """
        t = self.table
        statement = update(t).where(t.c.status == DEAD).values(
            status=PENDING, attempts=0, next_attempt_at=now, lease_until=None,
            requeued_at=now, requeues=t.c.requeues + 1,
        )
        if message_id is not None:
            statement = statement.where(t.c.id == message_id)
        if owner is not None:
            statement = statement.where(t.c.owner == owner)
        with write_transaction(self.engine) as connection:
            return connection.execute(statement).rowcount

    def get(self, message_id: str) -> OutboxRecord | None:
        """The stored message ``message_id``, or None."""
        with read_only(self.engine) as connection:
            row = connection.execute(
                select(self.table).where(self.table.c.id == message_id)
            ).first()
        return None if row is None else _record(row)

    def counts(self) -> dict[str, int]:
        """Number of messages per status; every status is present, zero included."""
        t = self.table
        with read_only(self.engine) as connection:
            rows = connection.execute(select(t.c.status, func.count()).group_by(t.c.status)).all()
        result = dict.fromkeys(STATUSES, 0)
        result.update({status: int(count) for status, count in rows})
        return result

    def oldest_undelivered(self) -> datetime | None:
        """When the longest-waiting message still to be delivered (pending or relayed) was
        written, or requeued if it was a dead letter; None when none waits."""
        t = self.table
        waiting_since = func.min(func.coalesce(t.c.requeued_at, t.c.created_at,
                                               type_=UtcDateTime()), type_=UtcDateTime())
        with read_only(self.engine) as connection:
            oldest: datetime | None = connection.execute(
                select(waiting_since).where(or_(t.c.status == PENDING, t.c.status == RELAYED))
            ).scalar_one()
        return oldest

    def list(
        self, status: str | None = None, owner: str | None = None, limit: int = 100
    ) -> builtins.list[OutboxRecord]:
        """Up to ``limit`` messages, newest first, optionally of one status and one owner."""
        t = self.table
        query = select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
        if status is not None:
            query = query.where(t.c.status == status)
        if owner is not None:
            query = query.where(t.c.owner == owner)
        with read_only(self.engine) as connection:
            return [_record(r) for r in connection.execute(query)]


def _insert_values(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "owner": message.owner,
        "destination": message.destination,
        "content_type": message.content_type,
        "payload": message.payload,
        "status": PENDING,
        "attempts": 0,
        "requeues": 0,
        "created_at": message.created_at,
        "next_attempt_at": message.created_at,
    }


def _settled(row: Row[Any], settlement: Settlement) -> Settled:
    return Settled(id=row.id, kind=row.kind, owner=row.owner, created_at=row.created_at,
                   status=DELIVERED if settlement.delivered else DEAD, at=settlement.now,
                   attempts=settlement.attempts if settlement.attempts is not None
                   else row.attempts)


def _record(row: Row[Any]) -> OutboxRecord:
    m = row._mapping
    return OutboxRecord(
        id=m["id"], destination=m["destination"], payload=bytes(m["payload"]),
        created_at=m["created_at"], content_type=m["content_type"], kind=m["kind"],
        owner=m["owner"], status=m["status"], attempts=m["attempts"], requeues=m["requeues"],
        next_attempt_at=m["next_attempt_at"], requeued_at=m["requeued_at"],
        last_attempt_at=m["last_attempt_at"], delivered_at=m["delivered_at"],
        last_error=m["last_error"], lease_until=m["lease_until"],
    )
