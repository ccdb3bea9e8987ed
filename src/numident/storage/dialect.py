"""The few statements whose SQL differs between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Column, Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite

Built = TypeVar("Built")


def per_dialect(build: Callable[[Connection], Built]) -> Callable[[Connection], Built]:
    """``build(conn)``, built once for each dialect and kept (a decorator for a module's
    statement builder): building a statement costs more than running it, and a statement kept
    computes its cache key once."""
    built: dict[str, Built] = {}

    @functools.wraps(build)
    def statement(conn: Connection) -> Built:
        name = conn.dialect.name
        if name not in built:
            built[name] = build(conn)
        return built[name]

    return statement


def conflict_insert(conn: Connection, target: Table) -> postgresql.Insert | sqlite.Insert:
    """``target``'s INSERT in ``conn``'s dialect: the one with ``ON CONFLICT`` clauses."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def upsert(conn: Connection, target: Table, keys: Sequence[str], update: Sequence[str],
           extra: Callable[[Any], Mapping[str, Any]] | None = None) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET c = excluded.c`` for each ``update`` column.

    ``extra(excluded)`` sets further columns to expressions of their own (e.g. a CASE on the
    old value), given the proposed row as ``excluded``.
    """
    statement = conflict_insert(conn, target)
    values: dict[str, Any] = {c: statement.excluded[c] for c in update}
    values.update(extra(statement.excluded) if extra else {})
    upserting: Insert = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
    return upserting


def in_one_statement(conn: Connection, statement: Insert, column: Column[Any]) -> Insert:
    """``statement`` for many rows written as one multi-row ``INSERT`` on PostgreSQL.

    psycopg runs a plain executemany as one pipelined statement per row, whose results it
    reads one by one in Python; with ``RETURNING`` (of ``column``, read and dropped) SQLAlchemy
    sends the rows in pages of ``VALUES`` lists instead. A page holds at most
    :data:`PSYCOPG_CACHED_PARAMETERS` parameters: psycopg rewrites a query's placeholders in
    Python, a walk over its whole text, and keeps the result only for queries with no more
    parameters than that; a page of a thousand rows was rewritten on every execution, which
    cost more than the round trips of small pages it saves. SQLite's executemany loops in C
    and is left as is. An upsert given this must hold each key once (PostgreSQL
    refuses one statement that updates a row twice). ``statement`` should be built once (a
    module's constant): its variant is kept for it, as building a statement costs more than
    running it.
    """
    if conn.dialect.name != "postgresql":
        return statement
    returning = _RETURNING.get(statement)
    if returning is None:
        rows = max(1, PSYCOPG_CACHED_PARAMETERS // len(statement.table.columns))
        returning = _RETURNING[statement] = statement.returning(column).execution_options(
            insertmanyvalues_page_size=rows)
    return returning


PSYCOPG_CACHED_PARAMETERS = 50
"""The most parameters of a query whose conversion psycopg caches
(``psycopg._queries.MAX_CACHED_STATEMENT_PARAMS``)."""
_RETURNING: dict[Insert, Insert] = {}


def insert_ignore(conn: Connection, target: Table, keys: Sequence[str]) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``."""
    ignoring: Insert = conflict_insert(conn, target).on_conflict_do_nothing(
        index_elements=list(keys))
    return ignoring


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the paramstyle of ``conn``'s driver.

    For the few hot paths that call the driver directly (``exec_driver_sql``, a raw cursor):
    sqlite3 takes ``?``, psycopg ``%s``.
    """
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


def timestamp_binder(conn: Connection, column: Column[Any]
                     ) -> Callable[[datetime | None], Any]:
    """The ``column``'s own bind processing of a timestamp, for driver-level executemany.

    The processing is the dialect's, as Core binds it (on SQLite, the text it stores): the
    type's generic bind processor would leave a datetime to sqlite3's own adapter, which
    writes a whole second as ``12:00:00`` where Core writes ``12:00:00.000000``, and SQLite
    compares timestamps as text. Results are remembered per value: a large import holds far
    fewer distinct times than rows.
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
