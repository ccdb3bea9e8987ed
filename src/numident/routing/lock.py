"""The routing load lock: one load of routing data at a time, across processes and hosts.

A lease in a row of the messenger's database (``routing_load_lock``), the same on SQLite and
PostgreSQL. A loader takes it in a short transaction, renews it in every transaction of its
load, and gives it up at the end; a loader that died leaves it to expire after
``lease_seconds``. Each acquisition increments ``fence``: a full load writes its rows under
that number as their generation, so two loads can never write into one generation, and a
loader that stalled past its lease and was overtaken finds, at its next renewal, that the
lease is no longer its own and switches nothing on (a fencing token).

Holding a lease spans many transactions, which SQLite's write lock cannot do without
stopping every other writer of the messenger for the length of a load.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update

from numident.errors import Conflict
from numident.routing.tables import routing_datasets, routing_load_lock
from numident.storage.dialect import insert_ignore

NAME = "routing"
Clock = Callable[[], datetime]
Waiting = Callable[[str], None]
"""Told once, with the holder's description, when a load has to wait for another."""


@dataclass(frozen=True)
class Lease:
    token: str
    fence: int
    """The acquisition's number, unique and growing: the generation a full load writes."""


class LoadLock:
    def __init__(self, engine: Engine, *, lease_seconds: float = 60.0,
                 clock: Clock | None = None) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock or (lambda: datetime.now(UTC))

    def acquire(self, purpose: str, *, wait_seconds: float,
                waiting: Waiting | None = None) -> Lease:
        """Take the lease, waiting up to ``wait_seconds`` for a running load to end.

        Refuses with :class:`~numident.errors.Conflict` (``ROUTING_LOAD_RUNNING``) naming the
        load that holds it when the wait is over.
        """
        deadline = time.monotonic() + wait_seconds
        pause, told = 0.02, False
        while True:
            lease, holder = self._try(purpose)
            if lease is not None:
                return lease
            if time.monotonic() + pause > deadline:
                raise Conflict(f"another routing load is running ({holder}); waited "
                               f"{wait_seconds:g} s for it", code="ROUTING_LOAD_RUNNING")
            if not told and waiting is not None:
                waiting(holder)
                told = True
            # Polling, since neither store can wake a waiter in another process; the pause
            # grows so that a long load is not hammered, and stays short enough to follow it.
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)

    def renew(self, conn: Connection, lease: Lease) -> None:
        """Extend the lease inside ``conn``'s transaction; refuse if it was taken over.

        Called in each transaction of a load, so that a load overtaken after stalling past
        its lease commits nothing more.
        """
        changed = conn.execute(update(routing_load_lock).where(
            routing_load_lock.c.name == NAME, routing_load_lock.c.holder == lease.token)
            .values(expires_at=self.clock() + self.lease))
        if changed.rowcount != 1:
            raise Conflict("this routing load stalled for longer than its lease and another "
                           "load took over; nothing more of it was switched on",
                           code="ROUTING_LOAD_OVERTAKEN")

    def release(self, lease: Lease) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(routing_load_lock).where(
                routing_load_lock.c.name == NAME, routing_load_lock.c.holder == lease.token)
                .values(holder=None, purpose=None, acquired_at=None, expires_at=None))

    def _try(self, purpose: str) -> tuple[Lease | None, str]:
        token, now = str(uuid.uuid4()), self.clock()
        with self.engine.begin() as conn:
            # The first fence follows the generations loaded before the lock existed.
            start = conn.execute(select(func.max(routing_datasets.c.generation))).scalar()
            conn.execute(insert_ignore(conn, routing_load_lock, ["name"]).values(
                name=NAME, fence=start or 0))
            # One statement decides: on PostgreSQL a concurrent taker waits for this row and
            # then finds it held; on SQLite the transaction holds the write lock.
            fence = conn.execute(update(routing_load_lock).where(
                routing_load_lock.c.name == NAME,
                (routing_load_lock.c.holder.is_(None)) | (routing_load_lock.c.expires_at < now))
                .values(holder=token, purpose=purpose, acquired_at=now,
                        expires_at=now + self.lease, fence=routing_load_lock.c.fence + 1)
                .returning(routing_load_lock.c.fence)).scalar_one_or_none()
            if fence is not None:
                return Lease(token, fence), ""
            held = conn.execute(select(routing_load_lock.c.purpose,
                                       routing_load_lock.c.acquired_at)
                                .where(routing_load_lock.c.name == NAME)).one()
        return None, f"{held.purpose}, since {held.acquired_at:%Y-%m-%d %H:%M:%S} UTC"
