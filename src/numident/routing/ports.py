"""Portability files: the national database's export and a plain CSV.

- The national export (``Port_All*`` full snapshots, hourly ``Port_Increment*`` files), comma
  separated, Windows-1251: ``Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount`` with
  ten-digit numbers without the leading 7. The owner is found by ``OwnerId``, else by ``MNC``.
- A plain ``number,operator,ported_at`` CSV: the number in E.164 (or 10/11 digits), the operator
  by any alias (ИНН, OwnerId, MNC), the time in ISO 8601.

Times without a zone are taken as UTC. Rows are read into compact arrays (20 million rows fit in
a few hundred megabytes); a file with any bad row is rejected whole.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from numident.routing.files import Problems, column_positions, detect_encoding

Kind = Literal["full", "increment"]
NATIONAL = ("Number", "OwnerId", "MNC", "PortDate")
PLAIN = ("number", "operator", "ported_at")
NO_TIME = -1
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
               progress: Callable[[int], None] | None = None) -> PortRows:
    """Parse and check the whole file; :class:`~numident.errors.InvalidFile` on any bad row."""
    problems = Problems(path)
    numbers, operators, times, lines = array("q"), array("i"), array("q"), array("i")
    inns: list[str] = []
    codes: dict[str, int] = {}
    with path.open(encoding=detect_encoding(path), newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        national = "number" in {h.strip().casefold() for h in header} and \
            "ownerid" in {h.strip().casefold() for h in header}
        at = column_positions(path, header, NATIONAL if national else PLAIN)
        width = max(at.values()) + 1
        for line, row in enumerate(reader, start=2):
            if progress is not None and line % 100_000 == 0:
                progress(100_000)
            if len(row) < width:
                if any(cell.strip() for cell in row):
                    problems.add(line, "(row)", f"{len(row)} fields, the header names {width}")
                continue
            parsed = _national(row, at, line, problems, resolve) if national \
                else _plain(row, at, line, problems, resolve)
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
    # frombuffer shares the arrays' memory (and keeps them alive): no second copy of 20M rows.
    rows = PortRows(np.frombuffer(numbers, dtype=np.int64),
                    np.frombuffer(operators, dtype=np.int32),
                    np.frombuffer(times, dtype=np.int64), inns)
    _check_repeats(rows, np.frombuffer(lines, dtype=np.int32),
                   "Number" if national else "number", problems)
    problems.raise_if_any()
    return rows


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
              resolve: Resolve) -> tuple[int, str, int] | None:
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
    when = _time(row[at["PortDate"]], line, "PortDate", problems)
    return None if when is None else (int(raw), inn, when)


def _plain(row: list[str], at: dict[str, int], line: int, problems: Problems,
           resolve: Resolve) -> tuple[int, str, int] | None:
    raw = row[at["number"]].strip()
    digits = raw[1:] if raw.startswith("+") else raw
    if len(digits) == 11 and digits[0] in "78":
        digits = digits[1:]
    if not (len(digits) == 10 and digits.isascii() and digits.isdigit()) or \
            (raw.startswith("+") and not raw.startswith("+7")):
        problems.add(line, "number", f"{raw!r} is not a Russian number (+7 and ten digits)")
        return None
    alias = row[at["operator"]].strip()
    inn = next((found for kind in ("inn", "owner", "mnc")
                if (found := resolve(f"{kind}:{alias}")) is not None), None)
    if inn is None:
        problems.add(line, "operator", f"{alias!r} is not in the operator directory")
        return None
    when = _time(row[at["ported_at"]], line, "ported_at", problems)
    return None if when is None else (int(digits), inn, when)


def _time(raw: str, line: int, field: str, problems: Problems) -> int | None:
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
    return int(parsed.timestamp())
