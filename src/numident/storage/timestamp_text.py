"""One text for each instant in SQLite's timestamp columns (used from migrations).

SQLite has no timestamp type: :class:`numident.storage.types.UtcDateTime` stores naive UTC
text, compared as text, in Core's format ``YYYY-MM-DD HH:MM:SS.ffffff``. The driver-level
writes of imports and of ``identify-all`` once bound datetimes through sqlite3's own adapter,
which writes a whole second without its fraction (``12:00:00``). Such a time sorts before,
and compares unequal to, the same instant written by Core, so an import saw those lines as
changed. :func:`complete_whole_seconds` gives them the fraction Core writes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

WHOLE_SECOND = len("2026-01-01 12:00:00")


def complete_whole_seconds(op: Any) -> None:
    """Give every short whole-second text of every ``DATETIME`` column its ``.000000``.

    PostgreSQL stores timestamps as such: nothing to do there. Append-only tables (their
    triggers refuse the UPDATE: an audit entry is never rewritten) keep their text; every
    reader parses both forms. Each column is one UPDATE of the rows that need it.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    triggers = {name for (name,) in bind.execute(sa.text(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
    schema = sa.inspect(bind)
    tables = [name for name in schema.get_table_names() if f"{name}_no_update" not in triggers]
    for name in tables:
        for column in schema.get_columns(name):
            if not isinstance(column["type"], sa.DateTime):
                continue
            text = sa.column(column["name"], sa.String)
            op.execute(sa.update(sa.table(name, text))
                       .where(sa.func.length(text) == WHOLE_SECOND)
                       .values({text: text + ".000000"}))
