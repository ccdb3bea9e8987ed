"""The SQL-backed memory of one-time identifiers, shared by all replicas: client-assertion
``jti`` values, and the access tokens that may be used once."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Engine, delete

from numident.core.clock import Clock
from numident.operator.tables import used_assertions
from numident.storage.dialect import insert_ignore


class SqlJtiStore:
    """Remembers each key until its ``expires_at``; a second use before then is a replay.

    Keys are stored as their SHA-256: a client chooses its ``jti``, so its length is not ours
    to bound, while the column's is. Expired keys are deleted as new ones arrive, so the table
    holds only what can still be replayed.
    """

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def remember(self, key: str, expires_at: datetime) -> bool:
        digest = hashlib.sha256(key.encode()).hexdigest()
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        with self._engine.begin() as conn:
            conn.execute(delete(used_assertions)
                         .where(used_assertions.c.expires_at < self._clock.now()))
            inserted = conn.execute(
                insert_ignore(conn, used_assertions, ["jti"]).returning(used_assertions.c.jti),
                {"jti": digest, "expires_at": expires_at}).first()
        return inserted is not None

    def purge(self, now: datetime) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(used_assertions)
                                .where(used_assertions.c.expires_at < now)).rowcount
