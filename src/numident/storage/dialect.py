"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, target: Table, keys: Sequence[str], update: Sequence[str],
           extra: Callable[[Any], Mapping[str, Any]] | None = None) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET c = excluded.c`` for each ``update`` column.

    ``extra(excluded)`` sets further columns to expressions of their own (e.g. a CASE on the
    old value), given the proposed row as ``excluded``.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(target)
    values: dict[str, Any] = {c: statement.excluded[c] for c in update}
    values.update(extra(statement.excluded) if extra else {})
    upserting: Insert = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    return upserting


def in_one_statement(conn: Connection, statement: Insert, column: Column[Any]) -> Insert:
    """``statement`` for many rows written as one multi-row ``INSERT`` on PostgreSQL.

    psycopg runs a plain executemany as one pipelined statement per row, whose results it
    reads one by one in Python; with ``RETURNING`` (of ``column``, read and dropped) SQLAlchemy
    sends the rows in batches of ``VALUES`` lists instead. SQLite's executemany loops in C
    and is left as is. An upsert given this must hold each key once (PostgreSQL refuses one
    statement that updates a row twice). ``statement`` should be built once (a module's
    constant): its variant is kept for it, as building a statement costs more than running it.
    """
    if conn.dialect.name != "postgresql":
        return statement
    returning = _RETURNING.get(statement)
    if returning is None:
        returning = _RETURNING[statement] = statement.returning(column)
    return returning


_RETURNING: dict[Insert, Insert] = {}


def insert_ignore(conn: Connection, target: Table, keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(target).on_conflict_do_nothing(index_elements=list(keys))
    return sqlite.insert(target).on_conflict_do_nothing(index_elements=list(keys))


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the paramstyle of ``conn``'s driver.

    For the few hot paths that call the driver directly (``exec_driver_sql``, a raw cursor):
    sqlite3 takes ``?``, psycopg ``%s``.
    """
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


def timestamp_binder(conn: Connection, column: Column[Any]
                     ) -> Callable[[datetime | None], Any]:
    """The ``column``'s own bind processing of a timestamp, for driver-level executemany: the
    value SQLAlchemy itself would hand the driver (on SQLite its text, as a Core statement
    writes it, rather than a datetime that the driver would format once per row in its own
    way).

    Results are remembered per value: a large import holds far fewer distinct times than rows.
    """
    processor = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    bound: dict[datetime, Any] = {}

    def bind(value: datetime | None) -> Any:
        if value is None:
            return None
        if value not in bound:
            bound[value] = processor(value) if processor else value
        return bound[value]

    return bind
