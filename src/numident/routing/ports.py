"""Portability files: the national database's export and a plain CSV.

- The national export (``Port_All*`` full snapshots, hourly ``Port_Increment*`` files), comma
  separated, Windows-1251: ``Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount`` with
  ten-digit numbers without the leading 7. The owner is found by ``OwnerId``, else by ``MNC``.
- A plain ``number,operator,ported_at`` CSV: the number in E.164 (or 10/11 digits), the operator
  by any alias (ИНН, OwnerId, MNC), the time in ISO 8601.

Times without a zone are taken as UTC; a port before number portability began in Russia
(1 December 2013) or later than a day after the load is junk. Every number must be a valid
Russian one: Kazakhstan shares the country code +7 (``+77...``), and ``phonenumbers`` tells the
two apart. The national export says in ``RowCount`` of its first row how many rows it holds;
a file that holds another number of rows is cut off (or padded) and refused.

Rows are read into compact arrays (20 million rows fit in a few hundred megabytes); a file with
any bad row is rejected whole.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import phonenumbers

from numident.routing.files import Problems, RegistryRows, column_positions

Kind = Literal["full", "increment"]
NATIONAL = ("Number", "OwnerId", "MNC", "PortDate", "RowCount")
PLAIN = ("number", "operator", "ported_at")
NO_TIME = -1
PORTABILITY_STARTED = datetime(2013, 12, 1, tzinfo=UTC)
"""Mobile number portability began in Russia on this day (126-FZ, art. 44 as amended)."""
CLOCK_SLACK = timedelta(days=1)
"""How far past the load a port date may lie: exporters' clocks and zones disagree a little."""
BLOCK = 10_000
"""phonenumbers decides a ten-digit +7 number's country by its first six digits (the deepest
pattern, Russia's mobile ``9300 05..``, is six digits and then any four), so the check is made
once per block of 10,000 numbers, not once per row."""
Resolve = Callable[[str], str | None]
"""An operator alias (``"owner:mMTS"``, ``"mnc:01"``, ``"inn:7740000076"``) to its ИНН."""


@dataclass(frozen=True)
class PortRows:
    numbers: npt.NDArray[np.int64]
    """Ten-digit national numbers (the digits after +7)."""
    operators: npt.NDArray[np.int32]
    """Index into ``inns`` of each number's operator now."""
    ported_at: npt.NDArray[np.int64]
    """Unix seconds of the port, or -1 when the file does not say."""
    inns: list[str]

    def __len__(self) -> int:
        return len(self.numbers)


def kind_of(path: Path, explicit: Kind | None) -> Kind:
    """The load kind: as given, else ``Port_Increment*`` files are increments, all else full."""
    if explicit is not None:
        return explicit
    return "increment" if path.name.lower().startswith("port_increment") else "full"


def read_ports(path: Path, resolve: Resolve,
               progress: Callable[[int], None] | None = None,
               now: datetime | None = None) -> PortRows:
    """Parse and check the whole file; :class:`~numident.errors.InvalidFile` on any bad row.

    ``now`` is the time of the load, the latest port date accepted (plus a day).
    """
    problems = Problems(path)
    latest = (now or datetime.now(UTC)) + CLOCK_SLACK
    numbers, operators, times, lines = array("q"), array("i"), array("q"), array("i")
    inns: list[str] = []
    codes: dict[str, int] = {}
    rows = iter(RegistryRows(path, ",", problems))
    _, header = next(rows, (1, []))
    problems.raise_if_any()
    national = "number" in {h.strip().casefold() for h in header} and \
        "ownerid" in {h.strip().casefold() for h in header}
    at = column_positions(path, header, NATIONAL if national else PLAIN)
    width = max(at.values()) + 1
    count = RowCount(problems) if national else None
    for line, row in rows:
        if progress is not None and line % 100_000 == 0:
            progress(100_000)
        if len(row) < width:
            if any(cell.strip() for cell in row):
                problems.add(line, "(row)", f"{len(row)} fields, the header names {width}")
            continue
        if count is not None:
            count.see(line, row[at["RowCount"]])
        parsed = _national(row, at, line, problems, resolve, latest) if national \
            else _plain(row, at, line, problems, resolve, latest)
        if parsed is None:
            continue
        number, inn, when = parsed
        code = codes.get(inn)
        if code is None:
            code = codes[inn] = len(inns)
            inns.append(inn)
        numbers.append(number)
        operators.append(code)
        times.append(when)
        lines.append(line)
    if count is not None:
        count.check()
    # frombuffer shares the arrays' memory (and keeps them alive): no second copy of 20M rows.
    ported = PortRows(np.frombuffer(numbers, dtype=np.int64),
                      np.frombuffer(operators, dtype=np.int32),
                      np.frombuffer(times, dtype=np.int64), inns)
    field = "Number" if national else "number"
    line_of = np.frombuffer(lines, dtype=np.int32)
    _check_russian(ported, line_of, field, problems)
    _check_repeats(ported, line_of, field, problems)
    problems.raise_if_any()
    return ported


class RowCount:
    """The national export's own row count: on its first row, empty (or 0, or the same
    count) on the others. Rows refused for other reasons still count: they are in the file."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.declared: int | None = None
        self.first_line = 0
        self.rows = 0

    def see(self, line: int, raw: str) -> None:
        text = raw.strip()
        self.rows += 1
        if self.rows == 1:
            self.first_line = line
            if not (text.isascii() and text.isdigit()):
                self.problems.add(line, "RowCount", f"{text!r}: the first row must carry the "
                                  "number of rows of the file")
                return
            self.declared = int(text)
        elif text not in ("", "0") and (self.declared is None or text != str(self.declared)):
            self.problems.add(line, "RowCount", f"{text!r} contradicts the count "
                              f"{self.declared} on line {self.first_line}")

    def check(self) -> None:
        if self.declared is not None and self.declared != self.rows:
            self.problems.add(self.first_line, "RowCount",
                              f"the file declares {self.declared} row(s) but holds {self.rows}:"
                              " it is incomplete (cut off) or not one export")


def _check_russian(rows: PortRows, lines: npt.NDArray[np.int32], field: str,
                   problems: Problems) -> None:
    """Every number must be a valid Russian number, decided by phonenumbers block by block."""
    blocks = np.unique(rows.numbers // BLOCK)
    bad = [int(block) for block in blocks.tolist() if _region(int(block) * BLOCK) != "RU"]
    if not bad:
        return
    wrong = np.flatnonzero(np.isin(rows.numbers // BLOCK, np.array(bad, dtype=np.int64)))
    for position in wrong[np.argsort(lines[wrong], kind="stable")][:1000].tolist():
        number = int(rows.numbers[position])
        problems.add(int(lines[position]), field,
                     f"+7{number:010d} is {_country(number)}, not a Russian number")


def _region(number: int) -> str | None:
    """The country of +7 ``number`` by phonenumbers' metadata, or None when it has none.

    Countries that share +7 by leading digits (Kazakhstan: ``33``, ``7``) come first, then
    the code's main country (Russia) by its general pattern. For every number phonenumbers
    holds valid this is its own ``region_code_for_number`` (a test checks that), at two
    regular expressions instead of a match against every number type; and it also takes as
    Russian the blocks the registry allocated before the metadata listed them (in 2026 some
    of 930 00xx).
    """
    national = str(number)
    for region, leading, _general in _plus_seven():
        if leading is not None and leading.match(national):
            return region
    for region, leading, general in _plus_seven():
        if leading is None and general is not None and general.fullmatch(national):
            return region
    return None


@functools.cache
def _plus_seven() -> tuple[tuple[str, re.Pattern[str] | None, re.Pattern[str] | None], ...]:
    found = []
    for region in phonenumbers.region_codes_for_country_code(7):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        general = metadata.general_desc.national_number_pattern if metadata.general_desc \
            else None
        found.append((region, re.compile(metadata.leading_digits) if metadata.leading_digits
                      else None, re.compile(general) if general else None))
    return tuple(found)


def _country(number: int) -> str:
    region = _region(number)
    return f"a number of {region}" if region else "not a valid number of any country"


def _check_repeats(rows: PortRows, lines: npt.NDArray[np.int32], field: str,
                   problems: Problems) -> None:
    """A number may stand once in a file; found by sorting, not by a dict of 20 million keys."""
    order = np.argsort(rows.numbers, kind="stable")
    ranked = rows.numbers[order]
    repeats = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1
    for position in repeats[:1000]:
        first = lines[order[position - 1]]
        problems.add(int(lines[order[position]]), field,
                     f"number given again (also on line {int(first)})")


def _national(row: list[str], at: dict[str, int], line: int, problems: Problems,
              resolve: Resolve, latest: datetime) -> tuple[int, str, int] | None:
    raw = row[at["Number"]].strip()
    if not (len(raw) == 10 and raw.isascii() and raw.isdigit()):
        problems.add(line, "Number", f"{raw!r} is not ten digits")
        return None
    owner, mnc = row[at["OwnerId"]].strip(), row[at["MNC"]].strip()
    inn = resolve(f"owner:{owner}") or (resolve(f"mnc:{mnc}") if mnc else None)
    if inn is None:
        problems.add(line, "OwnerId", f"operator {owner!r} (MNC {mnc or '-'}) is not in the "
                     "operator directory")
        return None
    when = _time(row[at["PortDate"]], line, "PortDate", problems, latest)
    return None if when is None else (int(raw), inn, when)


def _plain(row: list[str], at: dict[str, int], line: int, problems: Problems,
           resolve: Resolve, latest: datetime) -> tuple[int, str, int] | None:
    raw = row[at["number"]].strip()
    # +7 and ten digits, or national 7/8 and ten digits, or the ten digits alone; a "+" form
    # of any other length is cut off or foreign, never shortened to ten digits.
    if raw.startswith("+"):
        digits = raw[2:] if raw.startswith("+7") and len(raw) == 12 else ""
    elif len(raw) == 11 and raw[0] in "78":
        digits = raw[1:]
    else:
        digits = raw
    if not (len(digits) == 10 and digits.isascii() and digits.isdigit()):
        problems.add(line, "number", f"{raw!r} is not a Russian number (+7 and ten digits)")
        return None
    alias = row[at["operator"]].strip()
    inn = next((found for kind in ("inn", "owner", "mnc")
                if (found := resolve(f"{kind}:{alias}")) is not None), None)
    if inn is None:
        problems.add(line, "operator", f"{alias!r} is not in the operator directory")
        return None
    when = _time(row[at["ported_at"]], line, "ported_at", problems, latest)
    return None if when is None else (int(digits), inn, when)


def _time(raw: str, line: int, field: str, problems: Problems,
          latest: datetime) -> int | None:
    text = raw.strip()
    if not text:
        return NO_TIME
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        problems.add(line, field, f"{text!r} is not a date and time")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed < PORTABILITY_STARTED:
        problems.add(line, field, f"{text!r} is before number portability began in Russia "
                     f"({PORTABILITY_STARTED:%Y-%m-%d})")
        return None
    if parsed > latest:
        problems.add(line, field, f"{text!r} is in the future")
        return None
    return int(parsed.timestamp())
