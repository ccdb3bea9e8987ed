"""The subscriber registry's import of the billing export: staged, then switched in by chunks.

The export (:mod:`numident.operator.export_file`) is read in one streamed pass and loaded,
in chunks, into a temporary table of the import's own connection (``executemany`` of one
prepared statement on SQLite, ``COPY`` on PostgreSQL). Staging never touches the registry,
so it holds no lock serving needs: on SQLite a transaction that writes only temporary tables
takes no write lock on the database file.

Duplicates of a number are found in the staged table. A file with bad rows is then rejected
whole, naming each line and field, unless the caller asks for a partial load (bad rows go to a
reject file, good rows load), and nothing is written. Otherwise the staged rows are switched
into the registry by :mod:`numident.operator.registry_switch`: published to a durable journal,
then applied in short transactions (none holds SQLite's write lock for long), each with the
history and notices of its numbers. Once published the import rolls forward: if it is killed,
the next import, the same one run again or the gateway completes it; killed before, it leaves
the registry exactly as it was. Before reading its file an import completes every earlier one.

An import is idempotent: rows equal to what is stored change nothing and add no history.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select

from numident.errors import FileProblem, InvalidFile
from numident.operator import events, import_history, registry_switch
from numident.operator.export_file import (
    Item,
    Layout,
    OptionalColumns,
    RowRules,
    SubscriberRow,
    read_rows,
)
from numident.operator.import_history import ImportCounts
from numident.operator.registry_switch import Pace, Switched, staged, staged_holders
from numident.operator.tables import IMPORT_HOLDER_COLUMNS as _HOLDER_COLUMNS
from numident.operator.tables import subscribers
from numident.storage.database import TEMP_ONLY, is_postgresql
from numident.storage.dialect import timestamp_binder
from numident.trust.holder_key import HolderKey

CHUNK = 20_000
"""Rows staged per statement (and per transaction on SQLite)."""
SHOWN_PROBLEMS = 100
"""Problems a refused file reports in full; the rest are counted."""
Progress = Callable[[int], None]

@dataclass(frozen=True)
class ImportReport(ImportCounts):
    superseded: int = 0
    """Rows left as a lifecycle event recorded during the import made them."""
    problems: list[FileProblem] = field(default_factory=list)
    switch_seconds: float = 0.0
    """How long the switch (publishing and applying the staged rows) took here."""
    longest_hold_seconds: float = 0.0
    """The longest of the switch's transactions: on SQLite, the longest serving waited."""
    resumed: list[Switched] = field(default_factory=list)
    """Earlier imports, interrupted after their switch began, that this one completed first."""


def import_subscribers(engine: Engine, path: Path, *, now: datetime, notice_source: str,
                       handlers: events.LifecycleHandlers,
                       partial: bool = False,
                       reject_file: Path | None = None,
                       progress: Progress | None = None,
                       holder_key: HolderKey | None = None,
                       regions: frozenset[str] | None = None,
                       pace: Pace | None = None,
                       columns: OptionalColumns | None = None) -> ImportReport:
    """Load the billing export at ``path`` into the registry, all or nothing.

    Without ``partial`` a file with any bad row raises :class:`InvalidFile` listing them (the
    first :data:`SHOWN_PROBLEMS`, and how many in all) and nothing is written. With
    ``partial`` good rows load and bad rows are copied, with the reason, to ``reject_file``.
    ``regions`` limits the countries whose numbers the registry may hold (ISO 3166 codes;
    None: any). ``columns`` are the optional columns read and stored in ``holders`` (the
    composition root plugs in the CAMARA holder attributes); without them such columns are
    ignored like any extra column. ``holder_key`` is needed (ValueError without it) when the
    file has attributes that ``columns`` store as digests. ``progress`` is told of each
    chunk of rows read. ``pace`` sets how the switch shares the database with serving.
    ``handlers`` are told the lines the import ends (no default: see
    :func:`numident.operator.events.record_event`). Each import, loaded or refused, is kept
    in :mod:`import_history`.
    """
    started = time.perf_counter()

    def run(outcome: str, counts: ImportCounts, problem: str | None = None
            ) -> import_history.ImportRun:
        finished = now + timedelta(seconds=time.perf_counter() - started)
        return import_history.ImportRun(
            **vars(counts.counts()), started_at=now, finished_at=finished,
            file_name=path.name, outcome=outcome, partial=partial, problem=problem)

    try:
        report = _import(engine, path, now=now, notice_source=notice_source, partial=partial,
                         progress=progress, holder_key=holder_key, regions=regions, pace=pace,
                         handlers=handlers, columns=columns)
    except InvalidFile as exc:
        import_history.record(engine, run(import_history.REFUSED,
                                          ImportCounts(rejected=exc.total), str(exc)))
        raise
    import_history.record(engine, run(import_history.LOADED, report))
    if report.rejected and reject_file is not None:
        _write_rejects(path, reject_file, report.problems)
    return report


def _import(engine: Engine, path: Path, *, now: datetime, notice_source: str, partial: bool,
            progress: Progress | None, holder_key: HolderKey | None,
            regions: frozenset[str] | None, pace: Pace | None,
            handlers: events.LifecycleHandlers,
            columns: OptionalColumns | None) -> ImportReport:
    pace = pace or Pace()
    mark = registry_switch.history_mark(engine)
    resumed = registry_switch.complete(engine, pace=pace, handlers=handlers)
    layout, items = read_rows(path, RowRules(now, regions, columns))
    problems = _Problems(keep_all=partial)
    with engine.connect() as conn:
        conn.execution_options(**{TEMP_ONLY: True})
        registry_switch.create_staging(conn, has_holders=layout.has_holders)
        try:
            _, key_needed = _stage(conn, layout, items, problems, now, holder_key,
                                      progress)
            problems.add_duplicates(*_duplicates(conn, layout, drop=partial))
            problems.add_duplicates(*_revived(conn, layout, drop=partial))
            if problems.total and not partial:
                raise InvalidFile(str(path), problems.shown(), total=problems.total)
            if key_needed is not None:
                raise ValueError(key_needed)
            conn.execution_options(**{TEMP_ONLY: False})
            started = time.perf_counter()
            import_id, longest = registry_switch.publish(
                conn, has_holders=layout.has_holders, imported_at=now,
                notice_source=notice_source, mark=mark, pace=pace)
        finally:
            registry_switch.drop_staging(conn)
    switched = registry_switch.complete(engine, pace=pace, up_to=import_id, handlers=handlers)
    resumed += [item for item in switched if item.import_id != import_id]
    own = registry_switch.outcome(engine, import_id)
    return ImportReport(
        rows=own.rows, inserted=own.inserted, updated=own.updated, unchanged=own.unchanged,
        superseded=own.superseded, notices=own.notices, rejected=problems.total,
        problems=problems.shown(), switch_seconds=time.perf_counter() - started,
        longest_hold_seconds=max([longest, *(i.longest_hold for i in switched)]),
        resumed=resumed)


class _Problems:
    """The problems found so far, in line order: all of them, or the first few and a count."""

    def __init__(self, *, keep_all: bool) -> None:
        self.keep_all = keep_all
        self.kept: list[FileProblem] = []
        self.total = 0
        self.duplicates = 0

    def add(self, problem: FileProblem) -> None:
        self.total += 1
        if self.keep_all or len(self.kept) < SHOWN_PROBLEMS:
            self.kept.append(problem)

    def add_duplicates(self, first: list[FileProblem], total: int) -> None:
        """Merge the ``first`` duplicate lines (all of them when keeping all) of ``total``."""
        self.total += total
        self.duplicates += total
        self.kept = sorted([*self.kept, *first], key=lambda p: p.line)
        if not self.keep_all:
            del self.kept[SHOWN_PROBLEMS:]

    def shown(self) -> list[FileProblem]:
        return self.kept if self.keep_all else self.kept[:SHOWN_PROBLEMS]


# -- staging ---------------------------------------------------------------------------------


def _stage(conn: Connection, layout: Layout, items: Iterator[Item], problems: _Problems,
           now: datetime, key: HolderKey | None, progress: Progress | None
           ) -> tuple[int, str | None]:
    """Load every good row into the staged tables and record the problems.

    Returns how many rows were staged, and why the holder key was needed if it was.
    """
    writer = _CopyWriter(conn) if is_postgresql(conn.engine) else _ExecutemanyWriter(conn)
    rows = 0
    chunk: list[tuple[int, SubscriberRow]] = []
    with writer:
        for item in items:
            if isinstance(item, FileProblem):
                problems.add(item)
                continue
            chunk.append(item)
            if len(chunk) == CHUNK:
                writer.write(chunk, layout, now, key)
                rows += len(chunk)
                if progress is not None:
                    progress(len(chunk))
                chunk = []
        if chunk:
            writer.write(chunk, layout, now, key)
            rows += len(chunk)
            if progress is not None:
                progress(len(chunk))
    registry_switch.index_staging(conn, has_holders=layout.has_holders)
    return rows, writer.needed.message


@dataclass
class _KeyNeeded:
    """The first row whose attributes need the holder key the import was not given.

    Reported (ValueError) only once the file has proven free of bad rows, which come first.
    """

    message: str | None = None


def _holder_values(layout: Layout, line: int, row: SubscriberRow, key: HolderKey | None,
                   now: Any, stamp: Callable[[datetime | None], Any],
                   needed: _KeyNeeded) -> tuple[Any, ...]:
    assert row.holder is not None
    assert layout.columns is not None
    try:
        values = layout.columns.stored(row.phone_number, row.contract_id, row.activated_at,
                                       row.holder, key)
    except ValueError as exc:
        needed.message = needed.message or str(exc)
        values = row.holder
    return (line, row.phone_number, row.contract_id, stamp(row.activated_at), *values,
            key.id if key is not None else None, now)


# The names are this module's constants; every value is bound.
_STAGE_ROWS = (f"INSERT INTO {staged.name} (line, phone_number, contract_id, status,"  # noqa: S608
               " activated_at) VALUES (?, ?, ?, ?, ?)")
_STAGE_HOLDERS = (f"INSERT INTO {staged_holders.name} (line, {', '.join(_HOLDER_COLUMNS)})"  # noqa: S608
                  f" VALUES (?, {', '.join('?' * len(_HOLDER_COLUMNS))})")


class _ExecutemanyWriter:
    """SQLite: one prepared INSERT per staged table, executed for a chunk per transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.stamp = timestamp_binder(conn, staged.c.activated_at)
        self.needed = _KeyNeeded()

    def __enter__(self) -> _ExecutemanyWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, chunk: list[tuple[int, SubscriberRow]], layout: Layout, now: datetime,
              key: HolderKey | None) -> None:
        stamp = self.stamp
        with self.conn.begin():
            self.conn.exec_driver_sql(_STAGE_ROWS, [
                (line, r.phone_number, r.contract_id, r.status.value, stamp(r.activated_at))
                for line, r in chunk])
            if layout.has_holders:
                updated = stamp(now)
                self.conn.exec_driver_sql(_STAGE_HOLDERS, [
                    _holder_values(layout, line, r, key, updated, stamp, self.needed)
                    for line, r in chunk])


class _CopyWriter:
    """PostgreSQL: the rows streamed with ``COPY ... FROM STDIN`` in one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cursor: Any = None
        self.needed = _KeyNeeded()

    def __enter__(self) -> _CopyWriter:
        self.transaction = self.conn.begin()
        self.cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.cursor.close()
        if exc_type is None:
            self.transaction.commit()
        else:
            self.transaction.rollback()

    def write(self, chunk: list[tuple[int, SubscriberRow]], layout: Layout, now: datetime,
              key: HolderKey | None) -> None:
        with self.cursor.copy(f"COPY {staged.name} (line, phone_number, contract_id, status,"
                              " activated_at) FROM STDIN") as copy:
            for line, r in chunk:
                copy.write_row((line, r.phone_number, r.contract_id, r.status.value,
                                r.activated_at))
        if layout.has_holders:
            with self.cursor.copy(f"COPY {staged_holders.name} (line, "
                                  f"{', '.join(_HOLDER_COLUMNS)}) FROM STDIN") as copy:
                for line, r in chunk:
                    copy.write_row(_holder_values(layout, line, r, key, now, lambda v: v,
                                                  self.needed))


def _duplicates(conn: Connection, layout: Layout, *, drop: bool
                ) -> tuple[list[FileProblem], int]:
    """The later lines of numbers given more than once, and how many there are."""
    first = (select(staged.c.phone_number, func.min(staged.c.line).label("first"))
             .group_by(staged.c.phone_number).having(func.count() > 1).subquery())
    later = (select(staged.c.line, staged.c.phone_number, first.c.first)
             .join(first, first.c.phone_number == staged.c.phone_number)
             .where(staged.c.line != first.c.first))
    return _refuse_lines(conn, layout, later, lambda row: FileProblem(
        row.line, "phone_number", f"{row.phone_number} already given on line {row.first}"),
        drop=drop)


def _revived(conn: Connection, layout: Layout, *, drop: bool) -> tuple[list[FileProblem], int]:
    """The lines that would bring a terminated contract back into force, and how many.

    A contract that ended (terminated, its number ported out) does not come back: a number
    returns under a new contract. Such a line is an export older than the lifecycle events
    the registry has recorded since, and applying it would answer ``confirmed`` for a line
    that is no longer the operator's subscriber's.
    """
    s, live = staged, subscribers
    revived = (select(s.c.line, s.c.phone_number, s.c.contract_id)
               .join(live, live.c.phone_number == s.c.phone_number)
               .where(registry_switch.revives(s, live)))
    return _refuse_lines(conn, layout, revived, lambda row: FileProblem(
        row.line, "status", f"contract {row.contract_id} of {row.phone_number} has ended and "
        "does not come back (is the export older than the registry's lifecycle events? a "
        "number returns under a new contract_id)"), drop=drop)


def _refuse_lines(conn: Connection, layout: Layout, lines: Select[Any],
                  problem: Callable[[Any], FileProblem], *, drop: bool
                  ) -> tuple[list[FileProblem], int]:
    """The problems of the staged ``lines`` (a query of their ``line`` and what ``problem``
    names), and how many there are.

    With ``drop`` every such line is returned and its rows leave the staged tables; without,
    only the first :data:`SHOWN_PROBLEMS`.
    """
    with conn.begin():
        total = int(conn.execute(select(func.count()).select_from(lines.subquery()))
                    .scalar_one())
        if not total:
            return [], 0
        shown = lines.order_by(staged.c.line)
        found = [problem(row)
                 for row in conn.execute(shown if drop else shown.limit(SHOWN_PROBLEMS))]
        if drop:
            numbers = [p.line for p in found]
            tables = (staged, staged_holders) if layout.has_holders else (staged,)
            for start in range(0, len(numbers), 10_000):
                for table in tables:
                    conn.execute(table.delete().where(
                        table.c.line.in_(numbers[start:start + 10_000])))
    return found, total


# -- rejects ---------------------------------------------------------------------------------


def _write_rejects(source: Path, target: Path, problems: Iterable[FileProblem]) -> None:
    """Copy each rejected line, with its line number, field and reason, to ``target``."""
    by_line = {p.line: p for p in problems}
    with source.open("rb") as src, target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        for number, raw in enumerate(src, start=1):
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace")
            record = next(csv.reader(io.StringIO(text)), [])
            if number == 1:
                writer.writerow([*record, "reject_line", "reject_field", "reject_reason"])
            elif (problem := by_line.get(number)) is not None:
                writer.writerow([*record, number, problem.field, problem.message])
