"""Triggers that make an audit table append-only on both SQLite and PostgreSQL.

Used from migrations: once installed, UPDATE and DELETE on the table fail in the database
itself, whatever code (or person with a SQL prompt) tries them.
"""

from __future__ import annotations

from typing import Any


def forbid_changes(op: Any, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$""")
        op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                       FOR EACH ROW EXECUTE FUNCTION {table}_append_only()""")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                       BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""")


def allow_changes(op: Any, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        return
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
