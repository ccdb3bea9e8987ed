"""Report periods, percentiles and time arithmetic in SQL, the same on SQLite and PostgreSQL.

PostgreSQL computes percentiles with ``percentile_cont`` (an ordered-set aggregate). SQLite has
no percentile function; there the same value is computed with window functions: each group's
values are numbered in order (``row_number``) and counted (``count``), and the percentile ``p``
is interpolated linearly between the values at positions ``1 + floor(p (n - 1))`` and the one
after, which is ``percentile_cont``'s definition. Both give the same figures for the same rows
(rounded to the millisecond, as interpolation may differ in the last bits).

Durations are seconds rounded to the millisecond on both: SQLite's ``julianday`` arithmetic is
exact only to about ten microseconds, and rounding makes both stores agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Float,
    Integer,
    Numeric,
    Select,
    case,
    cast,
    extract,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import ColumnElement

Key = tuple[Any, ...]


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants from ``start`` 00:00 UTC to the midnight after ``end`` (excluded)."""
    return (datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC))


def utc_day(conn: Connection, at: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC calendar day of the timestamp ``at`` (a date on PostgreSQL, text on SQLite:
    read it with :func:`as_date`)."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", at), Date)
    return func.date(at)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def seconds_between(conn: Connection, start: ColumnElement[Any],
                    end: ColumnElement[Any]) -> ColumnElement[float]:
    """``end - start`` in seconds, rounded to the millisecond."""
    if conn.dialect.name == "postgresql":
        return cast(func.round(cast(extract("epoch", end - start), Numeric), 3), Float)
    return cast(func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3), Float)


Aggregates = Mapping[str, Callable[[ReadOnlyColumnCollection[str, Any]], ColumnElement[Any]]]
"""Named aggregates to compute beside the percentiles, each built from the rows' columns."""


def grouped_figures(conn: Connection, rows: Select[Any], keys: Sequence[str], value: str,
                    fractions: Sequence[float], aggregates: Aggregates | None = None
                    ) -> list[dict[str, Any]]:
    """Per group of the columns ``keys`` of ``rows``: the ``aggregates`` and, under the name
    ``percentiles``, the ``fractions`` percentiles (``percentile_cont``) of column ``value``
    (None where no row of the group has one), all in one statement.
    """
    source = rows.subquery()
    named = dict(aggregates or {})
    if conn.dialect.name == "postgresql":
        group = [source.c[k] for k in keys]
        ordered = [func.percentile_cont(f).within_group(source.c[value]) for f in fractions]
        computed = [build(source.c).label(name) for name, build in named.items()]
        result = conn.execute(select(*group, *computed, *ordered).group_by(*group)).all()
    else:
        partition = [source.c[k] for k in keys]
        ranked = select(
            *source.c,
            func.row_number().over(partition_by=partition, order_by=source.c[value]).label(
                "_rn"),
            func.count(source.c[value]).over(partition_by=partition).label("_n"),
            func.count().over(partition_by=partition).label("_rows")).subquery()
        r = ranked.c
        # SQLite orders NULLs first: the values' own positions start after the group's NULLs.
        position_of_value = r._rn - (r._rows - r._n)
        figures: list[ColumnElement[Any]] = []
        for f in fractions:
            position = (r._n - 1) * literal_column(repr(float(f)))
            whole = cast(position, Integer)  # a cast truncates: the floor of a positive number
            low = func.max(case((position_of_value == whole + 1, r[value])))
            high = func.max(case((position_of_value == whole + 2, r[value])))
            fraction = func.max(position - whole)
            figures.append(low + fraction * (func.coalesce(high, low) - low))
        group = [r[k] for k in keys]
        computed = [build(r).label(name) for name, build in named.items()]
        result = conn.execute(select(*group, *computed, *figures).group_by(*group)).all()
    width = len(keys) + len(named)
    return [{**dict(zip([*keys, *named], row[:width], strict=True)),
             "percentiles": [None if v is None else _ms(v) for v in row[width:]]}
            for row in result]


def percentiles(conn: Connection, values: Select[Any], keys: Sequence[str], value: str,
                fractions: Sequence[float]) -> dict[Key, list[float]]:
    """The ``fractions`` percentiles of column ``value`` of the ``values`` statement, per group
    of its columns ``keys``; groups without values are absent."""
    return {tuple(g[k] for k in keys): g["percentiles"]
            for g in grouped_figures(conn, values, keys, value, fractions)
            if g["percentiles"] and g["percentiles"][0] is not None}


def _ms(value: Any) -> float:
    # Interpolation may differ between the stores in the last bits: figures are milliseconds.
    return round(float(value), 3)

