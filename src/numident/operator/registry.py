"""The subscriber registry: the billing export's import, and the lookups that answer requests.

The export is ``phone_number,contract_id,status,activated_at`` (extra columns are tolerated).
The optional columns of :mod:`numident.camara.holders` (``contract_type`` and the KYC holder
attributes) are checked and stored only when the file has them, so a plain export costs nothing
more; the attributes KYC Match compares only for equality are stored as digests under the
installation's holder key, which the import must then be given.
An import is idempotent: rows equal to what is stored change nothing, changed rows are updated
and recorded in ``subscriber_history``, and changes that end a contract or hand the number to
another contract are lifecycle events (their notices are written in the same transaction).
A file with bad rows is rejected whole, naming each line and field, unless the caller asks for
a partial load, in which case bad rows go to a reject file and good rows load.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from numident.camara import holders
from numident.camara.holder_key import HolderKey
from numident.core.identification import ContractStatus
from numident.core.notices import NoticeType
from numident.core.numbers import normalize
from numident.errors import FileProblem, InvalidFile, InvalidInput
from numident.operator import events
from numident.operator.tables import subscribers
from numident.storage.dialect import driver_sql, timestamp_binder

REQUIRED = ("phone_number", "contract_id", "status", "activated_at")
CHUNK = 20_000
Progress = Callable[[int], None]


@dataclass(frozen=True)
class SubscriberRow:
    phone_number: str
    contract_id: str
    status: ContractStatus
    activated_at: datetime | None
    holder: holders.HolderValues | None = None
    """The optional columns' values, when the file has any of those columns."""


Layout = tuple[list[int], int, list[tuple[int, str]]]
"""Positions of the REQUIRED columns, the header's width, and the optional columns present."""


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    notices: int = 0
    problems: list[FileProblem] = field(default_factory=list)


@functools.lru_cache(maxsize=65_536)
def parse_timestamp(value: str) -> datetime:
    """ISO 8601 date or date-time; a value without a zone is taken as UTC.

    Cached: an export of a million rows holds far fewer distinct activation dates.
    """
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_row(values: Sequence[str], at: Sequence[int], line: int,
              optional: Sequence[tuple[int, str]] = ()) -> SubscriberRow | FileProblem:
    """One CSV record as a row, or its problem.

    ``at`` are the positions of the REQUIRED columns, ``optional`` the positions and names of
    the optional columns the file has.
    """
    raw_number, raw_contract, raw_status, raw_date = (values[i] for i in at)
    try:
        number = normalize(raw_number)
    except InvalidInput as exc:
        return FileProblem(line, "phone_number", f"{raw_number!r}: {exc.message}")
    contract = raw_contract.strip()
    if not contract or len(contract) > 64:
        return FileProblem(line, "contract_id", "must be 1-64 characters")
    try:
        status = ContractStatus(raw_status.strip().lower())
    except ValueError:
        return FileProblem(line, "status", f"{raw_status!r} is not one of "
                           "active, suspended, terminated")
    raw_date = raw_date.strip()
    activated: datetime | None = None
    if raw_date:
        try:
            activated = parse_timestamp(raw_date)
        except ValueError:
            return FileProblem(line, "activated_at", f"{raw_date!r} is not an ISO 8601 date")
    if not optional:
        return SubscriberRow(number, contract, status, activated)
    holder = holders.parse_holder(values, optional)
    if isinstance(holder, holders.BadValue):
        return FileProblem(line, holder.column, holder.reason)
    return SubscriberRow(number, contract, status, activated, holder)


PARALLEL_FROM_BYTES = 8 << 20
"""Files from this size are parsed by one process per core (number checks dominate)."""


def read_export(path: Path, workers: int | None = None
                ) -> tuple[list[SubscriberRow], list[FileProblem]]:
    """Parse the whole file into its good rows and the problems of its bad ones.

    A large file is cut at line ends into parts parsed in parallel, each part knowing the line
    number it starts at, so problems name the same lines as a sequential read. Files with
    quoted fields (which may hold line breaks) are always read sequentially.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = [h.strip() for h in next(csv.reader(handle), [])]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InvalidFile(str(path), [FileProblem(1, name, "column is missing")
                                      for name in missing])
    layout: Layout = ([header.index(name) for name in REQUIRED], len(header),
                      [(header.index(name), name) for name in holders.COLUMNS if name in header])
    workers = workers or os.cpu_count() or 1
    parts = _parts(path, workers * 4) if workers > 1 and \
        path.stat().st_size >= PARALLEL_FROM_BYTES else None
    if parts is None:
        results = [_parse_part(path, None, layout)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_parse_part, [path] * len(parts), parts,
                                    [layout] * len(parts)))
    rows: list[SubscriberRow] = []
    problems: list[FileProblem] = []
    seen: dict[str, int] = {}
    for part_rows, part_problems in results:
        problems.extend(part_problems)
        for line, row in part_rows:
            first = seen.setdefault(row.phone_number, line)
            if first != line:
                problems.append(FileProblem(line, "phone_number", f"{row.phone_number} "
                                            f"already given on line {first}"))
            else:
                rows.append(row)
    problems.sort(key=lambda p: p.line)
    return rows, problems


Part = tuple[int, int, int]
"""A byte range of the file and the line number of its first line."""


def _parts(path: Path, count: int) -> list[Part] | None:
    data = path.read_bytes()
    if b'"' in data:
        return None
    start = data.index(b"\n") + 1 if b"\n" in data else len(data)
    line = 2
    parts: list[Part] = []
    step = max((len(data) - start) // count, 1)
    while start < len(data):
        end = data.find(b"\n", min(start + step, len(data) - 1))
        end = len(data) if end < 0 else end + 1
        parts.append((start, end, line))
        line += data.count(b"\n", start, end)
        start = end
    return parts


def _parse_part(path: Path, part: Part | None, layout: Layout
                ) -> tuple[list[tuple[int, SubscriberRow]], list[FileProblem]]:
    """Parse one part (None: the whole file after its header); rows keep their line."""
    at, width, optional = layout
    if part is None:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
        first = 1
    else:
        with path.open("rb") as handle:
            handle.seek(part[0])
            text = handle.read(part[1] - part[0]).decode("utf-8")
        first = part[2]
    rows: list[tuple[int, SubscriberRow]] = []
    problems: list[FileProblem] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    if part is None:
        next(reader, None)  # the header
    for values in reader:
        line = first + reader.line_num - 1
        if len(values) != width:
            if any(v.strip() for v in values):
                problems.append(FileProblem(line, "(row)", f"{len(values)} fields, the "
                                            f"header has {width}"))
            continue
        parsed = parse_row(values, at, line, optional)
        if isinstance(parsed, FileProblem):
            problems.append(parsed)
        else:
            rows.append((line, parsed))
    return rows, problems


def import_subscribers(engine: Engine, path: Path, *, now: datetime, notice_source: str,
                       partial: bool = False,
                       reject_file: Path | None = None,
                       progress: Progress | None = None,
                       holder_key: HolderKey | None = None) -> ImportReport:
    """Load the billing export at ``path`` into the registry in one transaction.

    Without ``partial`` a file with any bad row raises :class:`InvalidFile` listing them and
    nothing is written. With ``partial`` good rows load and bad rows are copied, with the reason,
    to ``reject_file``. ``holder_key`` is needed (ValueError without it) when the file has
    attributes stored as digests (:data:`numident.camara.holders.KEYED`).
    """
    rows, problems = read_export(path)
    if problems and not partial:
        raise InvalidFile(str(path), problems[:100], total=len(problems))
    if problems and reject_file is not None:
        _write_rejects(path, reject_file, problems)
    report = ImportReport(rows=len(rows), rejected=len(problems), problems=problems)
    with engine.begin() as conn:
        for chunk in _chunks(rows, CHUNK):
            _apply_chunk(conn, chunk, now, notice_source, report, holder_key)
            if progress is not None:
                progress(len(chunk))
    return report


def _apply_chunk(conn: Connection, chunk: Sequence[SubscriberRow], now: datetime,
                 notice_source: str, report: ImportReport, holder_key: HolderKey | None
                 ) -> None:
    numbers = [r.phone_number for r in chunk]
    stored = {
        row.phone_number: row
        for row in conn.execute(
            select(subscribers.c.phone_number, subscribers.c.contract_id,
                   subscribers.c.status, subscribers.c.activated_at)
            .where(subscribers.c.phone_number.in_(numbers))
        )
    }
    holders.write_holders(conn, [
        holders.HolderRow(r.phone_number, r.contract_id, r.activated_at, r.holder)
        for r in chunk if r.holder is not None], now, holder_key)
    changed: list[dict[str, object]] = []
    happened: list[tuple[NoticeType, str]] = []
    for row in chunk:
        old = stored.get(row.phone_number)
        if old is not None and (old.contract_id, old.status, old.activated_at) == (
                row.contract_id, row.status.value, row.activated_at):
            report.unchanged += 1
            continue
        if old is None:
            report.inserted += 1
        else:
            report.updated += 1
            kind = _event_for(old.contract_id, ContractStatus(old.status), row)
            if kind is not None:
                happened.append((kind, row.phone_number))
        changed.append({"phone_number": row.phone_number, "contract_id": row.contract_id,
                        "status": row.status.value, "activated_at": row.activated_at,
                        "updated_at": now})
    if not changed:
        return
    _write(conn, changed, now)
    for kind, number in happened:
        report.notices += events.notify_usages(conn, kind, number, occurred_at=now,
                                               recorded_at=now, event_id=None, actor="import",
                                               notice_source=notice_source)


def _write(conn: Connection, changed: list[dict[str, Any]], now: datetime) -> None:
    """Upsert the changed rows and append their history with the driver's executemany.

    A million-row import spends most of its time here; going through the driver directly
    (with the columns' own bind processors for the timestamps) is several times faster than
    the statement layer and writes exactly the same values.
    """
    stamp = timestamp_binder(conn, subscribers.c.updated_at)
    conn.exec_driver_sql(driver_sql(conn, _UPSERT), [
        (c["phone_number"], c["contract_id"], c["status"], stamp(c["activated_at"]), stamp(now))
        for c in changed])
    conn.exec_driver_sql(driver_sql(conn, _HISTORY), [
        (c["phone_number"], c["contract_id"], c["status"], "import", stamp(now))
        for c in changed])


_UPSERT = ("INSERT INTO subscribers (phone_number, contract_id, status, activated_at, updated_at)"
           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (phone_number) DO UPDATE SET"
           " contract_id = excluded.contract_id, status = excluded.status,"
           " activated_at = excluded.activated_at, updated_at = excluded.updated_at")
_HISTORY = ("INSERT INTO subscriber_history (phone_number, contract_id, status, change,"
            " occurred_at) VALUES (?, ?, ?, ?, ?)")


def _event_for(old_contract: str, old_status: ContractStatus,
               new: SubscriberRow) -> NoticeType | None:
    """The lifecycle event an import row stands for, if any."""
    in_force = old_status is not ContractStatus.TERMINATED
    if old_contract != new.contract_id and in_force:
        return NoticeType.NUMBER_REASSIGNED
    if in_force and new.status is ContractStatus.TERMINATED:
        return NoticeType.CONTRACT_TERMINATED
    return None


def _chunks(rows: Sequence[SubscriberRow], size: int) -> Iterator[Sequence[SubscriberRow]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _write_rejects(source: Path, target: Path, problems: Iterable[FileProblem]) -> None:
    by_line = {p.line: p for p in problems}
    with source.open(encoding="utf-8-sig", newline="") as src:
        lines = src.read().splitlines()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*next(csv.reader([lines[0]])), "reject_line", "reject_field",
                     "reject_reason"])
    for number, problem in sorted(by_line.items()):
        record = next(csv.reader([lines[number - 1]])) if number - 1 < len(lines) else []
        writer.writerow([*record, number, problem.field, problem.message])
    target.write_text(out.getvalue(), encoding="utf-8")
