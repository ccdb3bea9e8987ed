"""Many rows in few statements on PostgreSQL, each small enough for psycopg's query cache."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from numident.operator import audit
from numident.operator.tables import audit as audit_table
from numident.storage.database import create_database_engine, write_transaction
from numident.storage.dialect import PSYCOPG_CACHED_PARAMETERS
from numident.storage.migrate import upgrade


@pytest.mark.postgres
def test_a_thousand_entries_go_in_pages_that_psycopg_caches(postgres_url: str) -> None:
    """Every row is written, in multi-row statements of at most the parameters whose
    conversion psycopg keeps, rather than one statement rewritten on every execution."""
    engine = create_database_engine(postgres_url)
    upgrade(engine, "operator")
    pages: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
              _many: bool) -> None:
        if statement.startswith("INSERT INTO audit"):
            pages.append(len(parameters))

    now = datetime.now(UTC)
    try:
        with write_transaction(engine) as conn:
            audit.write(conn, [audit.entry(now, "chat", "answered", phone_number=f"+7916{i:07d}",
                                           detail={"result": "confirmed"})
                               for i in range(1000)])
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(audit_table)) == 1000
    finally:
        engine.dispose()
    assert 1 < len(pages) <= 1000
    assert max(pages) <= PSYCOPG_CACHED_PARAMETERS
    assert sum(pages) == 1000 * 7  # the seven columns an entry gives, for every entry
