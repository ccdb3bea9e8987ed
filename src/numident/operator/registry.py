"""The subscriber registry's import of the billing export: staged, then switched in at once.

The export (:mod:`numident.operator.export_file`) is read in one streamed pass and loaded,
in chunks, into a temporary table of the import's own connection (``executemany`` of one
prepared statement on SQLite, ``COPY`` on PostgreSQL). Staging never touches the registry,
so it holds no lock serving needs: on SQLite a transaction that writes only temporary tables
takes no write lock on the database file.

Duplicates of a number are found in the staged table. A file with bad rows is then rejected
whole, naming each line and field, unless the caller asks for a partial load (bad rows go to a
reject file, good rows load). Otherwise the staged rows are switched into the registry in one
short transaction of set-based statements: classify each row against the registry as it is at
that moment (new, changed, unchanged; and the lifecycle event a change stands for), upsert
the changed rows, append their ``subscriber_history``, upsert the holder attributes, and
invalidate the usages of every number whose contract ended or changed hands, with their
notices in the outbox (:func:`numident.operator.events.invalidate_usages`). The notices thus
commit with the change they announce, and an import that fails or is killed at any point
leaves the registry exactly as it was.

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

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from numident.camara import holders
from numident.camara.holder_key import HolderKey
from numident.core.identification import ContractStatus
from numident.core.notices import NoticeType
from numident.errors import FileProblem, InvalidFile
from numident.operator import events, import_history
from numident.operator import tables as registry_tables
from numident.operator.export_file import Item, Layout, RowRules, SubscriberRow, read_rows
from numident.operator.tables import subscriber_history, subscribers
from numident.storage.database import TEMP_ONLY, is_postgresql
from numident.storage.dialect import timestamp_binder
from numident.storage.types import UtcDateTime

CHUNK = 20_000
"""Rows staged per statement (and per transaction on SQLite)."""
SHOWN_PROBLEMS = 100
"""Problems a refused file reports in full; the rest are counted."""
Progress = Callable[[int], None]

_temporary = MetaData()
staged = Table(
    "import_staged", _temporary,
    Column("line", Integer, nullable=False),
    Column("phone_number", String(16), nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("outcome", String(10), nullable=True, comment="NULL: new; updated; unchanged"),
    Column("kind", String(32), nullable=True, comment="the lifecycle event of the change"),
    prefixes=["TEMPORARY"],
)
_HOLDER_COLUMNS = ["phone_number", "contract_id", "activated_at", *holders.COLUMNS,
                   "holder_key_id", "updated_at"]
staged_holders = Table(
    "import_staged_holders", _temporary,
    Column("line", Integer, nullable=False),
    *(Column(name, registry_tables.holders.c[name].type, nullable=True)
      for name in _HOLDER_COLUMNS),
    prefixes=["TEMPORARY"],
)


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    notices: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    switch_seconds: float = 0.0
    """How long the switch transaction (the only one that writes the registry) took."""


def import_subscribers(engine: Engine, path: Path, *, now: datetime, notice_source: str,
                       partial: bool = False,
                       reject_file: Path | None = None,
                       progress: Progress | None = None,
                       holder_key: HolderKey | None = None,
                       regions: frozenset[str] | None = None) -> ImportReport:
    """Load the billing export at ``path`` into the registry, all or nothing.

    Without ``partial`` a file with any bad row raises :class:`InvalidFile` listing them (the
    first :data:`SHOWN_PROBLEMS`, and how many in all) and nothing is written. With
    ``partial`` good rows load and bad rows are copied, with the reason, to ``reject_file``.
    ``regions`` limits the countries whose numbers the registry may hold (ISO 3166 codes;
    None: any). ``holder_key`` is needed (ValueError without it) when the file has attributes
    stored as digests (:data:`numident.camara.holders.KEYED`). ``progress`` is told of each
    chunk of rows read. Each import, loaded or refused, is kept in :mod:`import_history`.
    """
    started = time.perf_counter()

    def run(outcome: str, **counts: Any) -> import_history.ImportRun:
        finished = now + timedelta(seconds=time.perf_counter() - started)
        return import_history.ImportRun(now, finished, path.name, outcome, partial, **counts)

    try:
        report = _import(engine, path, now=now, notice_source=notice_source, partial=partial,
                         progress=progress, holder_key=holder_key, regions=regions)
    except InvalidFile as exc:
        import_history.record(engine, run(import_history.REFUSED, rejected=exc.total,
                                          problem=str(exc)))
        raise
    import_history.record(engine, run(
        import_history.LOADED, rows=report.rows, inserted=report.inserted,
        updated=report.updated, unchanged=report.unchanged, rejected=report.rejected,
        notices=report.notices))
    if report.rejected and reject_file is not None:
        _write_rejects(path, reject_file, report.problems)
    return report


def _import(engine: Engine, path: Path, *, now: datetime, notice_source: str, partial: bool,
            progress: Progress | None, holder_key: HolderKey | None,
            regions: frozenset[str] | None) -> ImportReport:
    layout, items = read_rows(path, RowRules(now, regions))
    problems = _Problems(keep_all=partial)
    with engine.connect() as conn:
        conn.execution_options(**{TEMP_ONLY: True})
        _create_staging(conn, layout)
        try:
            rows, key_needed = _stage(conn, layout, items, problems, now, holder_key,
                                      progress)
            problems.add_duplicates(*_duplicates(conn, layout, drop=partial))
            problems.add_duplicates(*_revived(conn, layout, drop=partial))
            if problems.total and not partial:
                raise InvalidFile(str(path), problems.shown(), total=problems.total)
            if key_needed is not None:
                raise ValueError(key_needed)
            conn.execution_options(**{TEMP_ONLY: False})
            report = ImportReport(rows=rows - problems.duplicates, rejected=problems.total,
                                  problems=problems.shown())
            started = time.perf_counter()
            with conn.begin():
                _switch(conn, layout, now, notice_source, report)
            report.switch_seconds = time.perf_counter() - started
            conn.execution_options(**{TEMP_ONLY: True})
            _count(conn, report)
        finally:
            conn.execution_options(**{TEMP_ONLY: True})
            _drop_staging(conn)
    return report


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


IMPORT_CACHE_KIB = 256 << 10
"""SQLite page cache of the import's connection: the switch then writes its pages once, at
commit, instead of spilling them to the log mid-transaction (a fifth of its time)."""
DEFAULT_CACHE_KIB = 2000


def _create_staging(conn: Connection, layout: Layout) -> None:
    with conn.begin():
        if not is_postgresql(conn.engine):
            conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        _drop_tables(conn)
        staged.create(conn)
        if layout.has_holders:
            staged_holders.create(conn)


def _drop_staging(conn: Connection) -> None:
    if conn.invalidated or conn.closed:
        return
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        _drop_tables(conn)
        if not is_postgresql(conn.engine):
            conn.exec_driver_sql(f"PRAGMA cache_size = -{DEFAULT_CACHE_KIB}")


def _drop_tables(conn: Connection) -> None:
    schema = "pg_temp" if is_postgresql(conn.engine) else "temp"
    for table in (staged, staged_holders):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{table.name}")


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
    with conn.begin():
        conn.exec_driver_sql(f"CREATE INDEX import_staged_number ON {staged.name} "
                             "(phone_number, line)")
        if is_postgresql(conn.engine):
            # autovacuum never analyses temporary tables: without statistics the planner
            # would join the staged rows to the registry as if they were a handful
            conn.exec_driver_sql(f"ANALYZE {staged.name}")
    return rows, writer.needed.message


@dataclass
class _KeyNeeded:
    """The first row whose attributes need the holder key the import was not given.

    Reported (ValueError) only once the file has proven free of bad rows, which come first.
    """

    message: str | None = None


def _holder_values(line: int, row: SubscriberRow, key: HolderKey | None,
                   now: Any, stamp: Callable[[datetime | None], Any],
                   needed: _KeyNeeded) -> tuple[Any, ...]:
    assert row.holder is not None
    try:
        values = holders.keyed_values(
            holders.HolderRow(row.phone_number, row.contract_id, row.activated_at, row.holder),
            key)
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
                    _holder_values(line, r, key, updated, stamp, self.needed) for line, r in chunk])


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
                    copy.write_row(_holder_values(line, r, key, now, lambda v: v, self.needed))


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
               .where(_revives(s, live)))
    return _refuse_lines(conn, layout, revived, lambda row: FileProblem(
        row.line, "status", f"contract {row.contract_id} of {row.phone_number} has ended and "
        "does not come back (is the export older than the registry's lifecycle events? a "
        "number returns under a new contract_id)"), drop=drop)


def _revives(s: Any, live: Any) -> Any:
    return and_(live.c.contract_id == s.c.contract_id,
                live.c.status == ContractStatus.TERMINATED.value,
                s.c.status != ContractStatus.TERMINATED.value)


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


# -- the switch ------------------------------------------------------------------------------


def _switch(conn: Connection, layout: Layout, now: datetime, notice_source: str,
            report: ImportReport) -> None:
    """Apply the staged rows to the registry, set-based, in the caller's transaction."""
    s, live = staged, subscribers
    in_force = live.c.status != ContractStatus.TERMINATED.value
    # A line that would revive a contract ended since the check above (a lifecycle event
    # committed meanwhile) is left as it is: the event is newer than the export.
    conn.execute(update(s).where(live.c.phone_number == s.c.phone_number).values(
        outcome=case((and_(live.c.contract_id == s.c.contract_id, live.c.status == s.c.status,
                           live.c.activated_at.is_not_distinct_from(s.c.activated_at)),
                      "unchanged"), (_revives(s, live), "unchanged"), else_="updated"),
        kind=case((and_(in_force, live.c.contract_id != s.c.contract_id),
                   NoticeType.NUMBER_REASSIGNED.value),
                  (and_(in_force, s.c.status == ContractStatus.TERMINATED.value),
                   NoticeType.CONTRACT_TERMINATED.value), else_=None)))
    changed = or_(s.c.outcome.is_(None), s.c.outcome == "updated")
    stamp = literal(now, UtcDateTime)
    insert = (postgresql if is_postgresql(conn.engine) else sqlite).insert
    # Changed lines are updated in place, new ones inserted: an upsert of a changed line
    # would first try the insert and fail on the key, doing the B-tree work twice.
    conn.execute(update(live).where(live.c.phone_number == s.c.phone_number,
                                    s.c.outcome == "updated")
                 .values(contract_id=s.c.contract_id, status=s.c.status,
                         activated_at=s.c.activated_at, updated_at=stamp))
    upsert = insert(live).from_select(
        ["phone_number", "contract_id", "status", "activated_at", "updated_at"],
        select(s.c.phone_number, s.c.contract_id, s.c.status, s.c.activated_at, stamp)
        .where(s.c.outcome.is_(None)).order_by(s.c.phone_number))
    conn.execute(upsert.on_conflict_do_update(index_elements=["phone_number"], set_={
        name: upsert.excluded[name]
        for name in ("contract_id", "status", "activated_at", "updated_at")}))
    conn.execute(subscriber_history.insert().from_select(
        ["phone_number", "contract_id", "status", "change", "occurred_at"],
        select(s.c.phone_number, s.c.contract_id, s.c.status, literal("import"), stamp)
        .where(changed).order_by(s.c.phone_number, s.c.line)))
    if layout.has_holders:
        target = registry_tables.holders
        holder_upsert = insert(target).from_select(
            _HOLDER_COLUMNS, select(*(staged_holders.c[name] for name in _HOLDER_COLUMNS))
            .where(true()))
        conn.execute(holder_upsert.on_conflict_do_update(index_elements=["phone_number"], set_={
            name: holder_upsert.excluded[name] for name in _HOLDER_COLUMNS[1:]}))
    report.notices = events.invalidate_usages(
        conn, select(s.c.phone_number, s.c.kind).where(s.c.kind.is_not(None)),
        occurred_at=now, recorded_at=now, event_id=None, actor="import",
        notice_source=notice_source)


def _count(conn: Connection, report: ImportReport) -> None:
    """Fill in the report's counts from the staged rows' outcomes (after the switch)."""
    with conn.begin():
        outcomes = conn.execute(select(staged.c.outcome, func.count())
                                .group_by(staged.c.outcome))
        for outcome, count in outcomes:
            if outcome is None:
                report.inserted = count
            elif outcome == "updated":
                report.updated = count
            else:
                report.unchanged = count


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
