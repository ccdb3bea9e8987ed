"""The SQL-backed memory of used client-assertion ids (``jti``), shared by all replicas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete

from numident.operator.tables import used_assertions
from numident.storage.dialect import insert_ignore


class SqlJtiStore:
    """Remembers each ``jti`` until its assertion expires; a second use is a replay."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def remember(self, key: str, expires_at: datetime) -> bool:
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        with self._engine.begin() as conn:
            inserted = conn.execute(
                insert_ignore(conn, used_assertions, ["jti"]).returning(used_assertions.c.jti),
                {"jti": key, "expires_at": expires_at}).first()
        return inserted is not None

    def purge(self, now: datetime) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(used_assertions)
                                .where(used_assertions.c.expires_at < now)).rowcount
