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

from collections.abc import Sequence
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


def percentiles(conn: Connection, values: Select[Any], keys: Sequence[str], value: str,
                fractions: Sequence[float]) -> dict[Key, list[float]]:
    """The ``fractions`` percentiles (``percentile_cont``) of column ``value`` of the
    ``values`` statement, per group of its columns ``keys``; groups without values are absent.
    """
    source = values.subquery()
    group = [source.c[k] for k in keys]
    if conn.dialect.name == "postgresql":
        ordered = [func.percentile_cont(f).within_group(source.c[value]) for f in fractions]
        rows = conn.execute(select(*group, *ordered).group_by(*group)).all()
        return {tuple(r[:len(keys)]): [_ms(v) for v in r[len(keys):]] for r in rows}
    ranked = select(
        *group, source.c[value].label("v"),
        func.row_number().over(partition_by=group, order_by=source.c[value]).label("rn"),
        func.count().over(partition_by=group).label("n")).subquery()
    rank_group = [ranked.c[k] for k in keys]
    figures: list[ColumnElement[Any]] = []
    for f in fractions:
        position = (ranked.c.n - 1) * literal_column(repr(float(f)))
        whole = cast(position, Integer)  # a cast truncates: the floor of a non-negative number
        low = func.max(case((ranked.c.rn == whole + 1, ranked.c.v)))
        high = func.max(case((ranked.c.rn == whole + 2, ranked.c.v)))
        fraction = func.max(position - whole)
        figures.append(low + fraction * (func.coalesce(high, low) - low))
    rows = conn.execute(select(*rank_group, *figures).group_by(*rank_group)).all()
    return {tuple(r[:len(keys)]): [_ms(v) for v in r[len(keys):]] for r in rows}


def _ms(value: Any) -> float:
    # Interpolation may differ between the stores in the last bits: figures are milliseconds.
    return round(float(value), 3)

