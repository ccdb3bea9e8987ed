"""The SQL-backed memory of one-time identifiers, shared by all replicas: client-assertion
``jti`` values, and the access tokens that may be used once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, update

from numident.core.clock import Clock
from numident.operator.tables import used_assertions
from numident.storage.dialect import insert_ignore


class SqlJtiStore:
    """Remembers each key until its ``expires_at``; a second use before then is a replay.

    Keys are stored as their SHA-256: a client chooses its ``jti``, so its length is not ours
    to bound, while the column's is. Expired keys are deleted at most every
    ``purge_seconds``, in a transaction of their own, so the table holds little more than what
    can still be replayed and concurrent requests do not contend for the same old rows.
    """

    def __init__(self, engine: Engine, clock: Clock, purge_seconds: float = 60.0) -> None:
        self._engine = engine
        self._clock = clock
        self._purge_seconds = purge_seconds
        self._next_purge = clock.now()

    def remember(self, key: str, expires_at: datetime) -> bool:
        now = self._clock.now()
        if now >= self._next_purge:
            self._next_purge = now + timedelta(seconds=self._purge_seconds)
            self.purge(now)
        digest = hashlib.sha256(key.encode()).hexdigest()
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        with self._engine.begin() as conn:
            inserted = conn.execute(
                insert_ignore(conn, used_assertions, ["jti"]).returning(used_assertions.c.jti),
                {"jti": digest, "expires_at": expires_at}).first()
            if inserted is not None:
                return True
            # A key whose entry expired but was not purged yet is free again, as in memory;
            # the condition makes taking it over atomic.
            return bool(conn.execute(
                update(used_assertions)
                .where(used_assertions.c.jti == digest, used_assertions.c.expires_at <= now)
                .values(expires_at=expires_at)).rowcount)

    def purge(self, now: datetime) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(used_assertions)
                                .where(used_assertions.c.expires_at < now)).rowcount
