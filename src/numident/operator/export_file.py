"""Reading the billing export: one pass, bounded memory, every bad record named by line and field.

The export is UTF-8 CSV (a UTF-8 byte order mark is allowed) with a header naming at least
``phone_number,contract_id,status,activated_at``; extra columns are tolerated, and the
optional columns the composition root plugs in (:class:`OptionalColumns`: the CAMARA holder
attributes) are checked when present.

The file is read as bytes, a line at a time, so that nothing a file holds can stop the read
with a decoding error or exhaust memory:

* a UTF-16 file (byte order mark) or a binary one (a NUL byte in the header) is refused whole;
* a line that is not UTF-8 is reported with the field that holds the bad bytes;
* a line longer than :data:`MAX_LINE_BYTES` (no real record comes near it) is reported
  without being held in memory, and so is a record the CSV reader cannot take (a quoted field
  grown past the reader's 128 KB limit);
* junk in a field is refused: control characters (NUL, line breaks) in ``contract_id``,
  numbers outside the operator's countries, activation dates before :data:`EARLIEST_ACTIVATION`
  or later than the import's own time plus :data:`CLOCK_TOLERANCE`.

:func:`read_rows` yields good rows and problems in file order; duplicates of a number are
found later, by the registry's staged table, so no set of numbers is kept here.
"""

from __future__ import annotations

import codecs
import csv
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from numident.core.identification import ContractStatus
from numident.core.numbers import normalize
from numident.errors import FileProblem, InvalidFile, InvalidInput
from numident.trust.holder_key import HolderKey

REQUIRED = ("phone_number", "contract_id", "status", "activated_at")
MAX_LINE_BYTES = 64 << 10
"""The longest line read: a full record with every optional column is under 8 KB."""
EARLIEST_ACTIVATION = datetime(1980, 1, 1, tzinfo=UTC)
"""No mobile contract is older: an earlier activation date is a corrupted value."""
CLOCK_TOLERANCE = timedelta(days=1)
"""How far past the import's time an activation may lie (billing systems' clocks and zones)."""


OptionalValues = tuple[str | None, ...]
"""One row's optional values in :attr:`OptionalColumns.names` order; None is unknown."""


class BadField(Protocol):
    @property
    def column(self) -> str: ...

    @property
    def reason(self) -> str: ...


class OptionalColumns(Protocol):
    """Columns the registry file may carry beyond the required ones, stored in ``holders``."""

    @property
    def names(self) -> Sequence[str]:
        """The columns, in the order of the values (and of ``holders``' columns)."""
        ...

    def parse(self, values: Sequence[str], at: Sequence[tuple[int, str]]
              ) -> OptionalValues | BadField:
        """The values of one record (``at``: position and name of each column present), or
        its first bad one."""
        ...

    def stored(self, phone_number: str, contract_id: str, activated_at: datetime | None,
               values: OptionalValues, key: HolderKey | None) -> OptionalValues:
        """The values as ``holders`` keeps them (some as digests under ``key``; ValueError
        when one needs the key and there is none)."""
        ...


class SubscriberRow(NamedTuple):
    phone_number: str
    contract_id: str
    status: ContractStatus
    activated_at: datetime | None
    holder: OptionalValues | None = None
    """The optional columns' values, when the file has any of those columns."""


@dataclass(frozen=True)
class Layout:
    """Where the header puts the columns an import reads."""

    required: tuple[int, ...]
    width: int
    optional: tuple[tuple[int, str], ...]
    columns: OptionalColumns | None = None

    @property
    def has_holders(self) -> bool:
        return bool(self.optional)


@dataclass(frozen=True)
class RowRules:
    """What a row's values must satisfy beyond their syntax."""

    now: datetime
    regions: frozenset[str] | None = None
    """ISO 3166 regions whose numbers the registry may hold; None: any."""
    columns: OptionalColumns | None = None
    """The optional columns read when present; None: none (ignored like extra columns)."""

    @functools.cached_property
    def latest_activation(self) -> datetime:
        return self.now + CLOCK_TOLERANCE


_STATUSES = {status.value: status for status in ContractStatus}
"""The statuses by name: a dictionary look-up, where ``ContractStatus(name)`` runs the
enumeration's whole lookup for each of a million rows."""


@functools.lru_cache(maxsize=65_536)
def parse_timestamp(value: str) -> datetime:
    """ISO 8601 date or date-time; a value without a zone is taken as UTC.

    Cached: an export of a million rows holds far fewer distinct activation dates.
    """
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_row(values: Sequence[str], layout: Layout, line: int,
              rules: RowRules) -> SubscriberRow | FileProblem:
    """One CSV record as a row, or the problem of its first bad field."""
    at_number, at_contract, at_status, at_date = layout.required
    raw_number, raw_contract = values[at_number], values[at_contract]
    raw_status, raw_date = values[at_status], values[at_date]
    try:
        number = normalize(raw_number, allowed_regions=rules.regions)
    except InvalidInput as exc:
        return FileProblem(line, "phone_number", f"{raw_number[:40]!r}: {exc.message}")
    contract = raw_contract.strip()
    if not contract or len(contract) > 64:
        return FileProblem(line, "contract_id", "must be 1-64 characters")
    if not contract.isprintable():
        bad = next(c for c in contract if not c.isprintable())
        return FileProblem(line, "contract_id", f"holds a control character (U+{ord(bad):04X})")
    status = _STATUSES.get(raw_status.strip().lower())
    if status is None:
        return FileProblem(line, "status", f"{raw_status[:40]!r} is not one of "
                           "active, suspended, terminated")
    raw_date = raw_date.strip()
    activated: datetime | None = None
    if raw_date:
        try:
            activated = parse_timestamp(raw_date)
        except ValueError:
            return FileProblem(line, "activated_at",
                               f"{raw_date[:40]!r} is not an ISO 8601 date")
        if activated < EARLIEST_ACTIVATION:
            return FileProblem(line, "activated_at", f"{raw_date!r} is before 1980")
        if activated > rules.latest_activation:
            return FileProblem(line, "activated_at", f"{raw_date!r} is in the future")
    if not layout.optional:
        return SubscriberRow(number, contract, status, activated)
    assert layout.columns is not None
    holder = layout.columns.parse(values, layout.optional)
    if not isinstance(holder, tuple):
        return FileProblem(line, holder.column, holder.reason)
    return SubscriberRow(number, contract, status, activated, holder)


Item = tuple[int, SubscriberRow] | FileProblem
"""A good row with its line, or the problem of a bad record."""


def read_rows(path: Path, rules: RowRules) -> tuple[Layout, Iterator[Item]]:
    """The file's layout, and its records in file order as rows or problems.

    Raises :class:`InvalidFile` at once when the header is unreadable or lacks a required
    column. The iterator holds the file open until it is exhausted or closed.
    """
    handle = path.open("rb")
    try:
        header = _header(path, handle)
    except BaseException:
        handle.close()
        raise
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        handle.close()
        raise InvalidFile(str(path), [FileProblem(1, name, "column is missing")
                                      for name in missing])
    optional = rules.columns.names if rules.columns is not None else ()
    layout = Layout(tuple(header.index(name) for name in REQUIRED), len(header),
                    tuple((header.index(name), name) for name in optional if name in header),
                    rules.columns)
    return layout, _items(handle, layout, rules)


def _header(path: Path, handle: BinaryIO) -> list[str]:
    raw = handle.readline(MAX_LINE_BYTES + 1)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _whole(path, "the file is UTF-16; export it as UTF-8")
    if b"\x00" in raw:
        raise _whole(path, "the file is binary (a NUL byte in the header), not a CSV export")
    if len(raw) > MAX_LINE_BYTES:
        raise _whole(path, f"the header is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _whole(path, "the header is not UTF-8; export the file as UTF-8") from None
    return [name.strip() for name in next(csv.reader([text]), [])]


def _whole(path: Path, message: str) -> InvalidFile:
    return InvalidFile(str(path), [FileProblem(1, "(file)", message)])


def _items(handle: BinaryIO, layout: Layout, rules: RowRules) -> Iterator[Item]:
    flagged: dict[int, str] = {}
    lines = _Lines(handle, flagged)
    reader = csv.reader(lines)
    with handle:
        while True:
            start = lines.number + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                flagged.clear()
                yield FileProblem(start, "(row)", f"cannot be read as CSV: {exc}")
                continue
            if flagged:
                problem = _flagged(flagged, start, values, layout)
                flagged.clear()
                yield problem
                continue
            if len(values) != layout.width:
                if any(v.strip() for v in values):
                    yield FileProblem(start, "(row)", f"{len(values)} fields, the header "
                                      f"has {layout.width}")
                continue
            parsed = parse_row(values, layout, start, rules)
            yield parsed if isinstance(parsed, FileProblem) else (start, parsed)


def _flagged(flagged: dict[int, str], start: int, values: Sequence[str],
             layout: Layout) -> FileProblem:
    """The problem of a record holding a line :class:`_Lines` could not decode or hold."""
    line, message = min(flagged.items())
    names = dict(zip(layout.required, REQUIRED, strict=True))
    names.update(dict(layout.optional))
    field = next((names.get(i, f"column {i + 1}") for i, v in enumerate(values)
                  if "\ufffd" in v), "(row)")
    return FileProblem(start, field, message if line == start else f"line {line}: {message}")


class _Lines:
    """The file's lines as text for the CSV reader, each one bounded and decoded.

    A line that is not UTF-8 is passed on decoded with replacement characters (so the record
    still splits into its fields) and flagged; an over-long line is skipped to its end,
    passed on as empty and flagged.
    """

    def __init__(self, handle: BinaryIO, flagged: dict[int, str]) -> None:
        self.handle = handle
        self.flagged = flagged
        self.number = 1  # the header has been read

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := self.handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            self.flagged[self.number] = f"the line is longer than {MAX_LINE_BYTES} bytes"
            return "\n"
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.flagged[self.number] = (f"is not UTF-8 (byte 0x{raw[exc.start]:02X} at column "
                                         f"{exc.start + 1}); export the file as UTF-8")
            return raw.decode("utf-8", errors="replace")
