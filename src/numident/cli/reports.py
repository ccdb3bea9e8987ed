"""What the report commands of both sides share: the period options and the three renderings.

A period is two UTC days, both included; one that is reversed or reaches past today is bad
usage (exit 2). ``table`` is a rich table, ``json`` one array of objects, ``csv`` a header row
and one row per organizer (or operator) and day; times are seconds.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from numident.cli.common import console

FromOption = Annotated[str, typer.Option("--from", metavar="DAY",
                                         help="First UTC day of the period (YYYY-MM-DD)")]
ToOption = Annotated[str, typer.Option("--to", metavar="DAY",
                                       help="Last UTC day of the period, included")]


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[Format, typer.Option("--format", help="How to print the figures")]


def period(start: str, end: str, now: datetime) -> tuple[date, date]:
    """The days ``start`` and ``end``, checked: valid, in order, not after ``now``'s day."""
    first, last = _day(start, "--from"), _day(end, "--to")
    if first > last:
        raise typer.BadParameter(f"the period is reversed: {first} comes after {last}",
                                 param_hint="--from/--to")
    today = now.astimezone(UTC).date()
    if last > today:
        raise typer.BadParameter(f"the period ends in the future: {last} is after today "
                                 f"({today}, UTC)", param_hint="--to")
    return first, last


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day (YYYY-MM-DD)",
                                 param_hint=option) from None


def render(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], how: Format,
           title: str) -> None:
    """Print ``rows`` (dicts with at least the ``columns`` keys; ``(key, heading)`` pairs)."""
    if how is Format.JSON:
        typer.echo(json.dumps([{k: _plain(r[k]) for k, _ in columns} for r in rows],
                              ensure_ascii=False, indent=2))
    elif how is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([k for k, _ in columns])
        writer.writerows([["" if r[k] is None else _plain(r[k]) for k, _ in columns]
                          for r in rows])
        typer.echo(out.getvalue(), nl=False)
    else:
        table = Table(*(heading for _, heading in columns), title=title)
        for row in rows:
            table.add_row(*(_cell(row[k]) for k, _ in columns))
        # As wide as the figures need: a narrow terminal would cut them to ellipses.
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        Console(width=max(console.width, natural), soft_wrap=True).print(table)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(_plain(value))
