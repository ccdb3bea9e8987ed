"""Triggers that make an audit table append-only on both SQLite and PostgreSQL.

Used from migrations: once installed, UPDATE and DELETE on the table fail in the database
itself, whatever code (or person with a SQL prompt) tries them. A chained table
(:mod:`numident.audit`) passes ``sealable=``: its content columns: then the one UPDATE
allowed is the sealer's, which sets ``seq`` and ``hash`` of a row that has none yet. The
triggers are a guard, not the proof: whoever drops them can edit rows, and the hash chain is
what shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def forbid_changes(op: Any, table: str, *, sealable: Sequence[str] = ()) -> None:
    changes = f"UPDATE OF {', '.join(('id', *sealable))}" if sealable else "UPDATE"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$""")
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE {changes} OR DELETE
                       ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""")
        if sealable:
            op.execute(f"""CREATE TRIGGER {table}_sealed_once BEFORE UPDATE ON {table}
                           FOR EACH ROW WHEN (OLD.seq IS NOT NULL)
                           EXECUTE FUNCTION {table}_append_only()""")
        return
    for name, action in (("update", changes), ("delete", "DELETE")):
        op.execute(f"""CREATE TRIGGER {table}_no_{name} BEFORE {action} ON {table}
                       BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")
    if sealable:
        op.execute(f"""CREATE TRIGGER {table}_sealed_once BEFORE UPDATE ON {table}
                       WHEN OLD.seq IS NOT NULL
                       BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def allow_changes(op: Any, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_sealed_once ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        return
    for trigger in (f"{table}_no_update", f"{table}_no_delete", f"{table}_sealed_once"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
