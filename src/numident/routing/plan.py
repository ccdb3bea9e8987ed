"""The national numbering plan registry file (``АВС/ DEF;От;До;Емкость;Оператор;Регион;...;ИНН``).

Each row gives a range of ten-digit national numbers, ``DEF`` followed by ``От``..``До``, held by
the operator whose ``ИНН`` is given. Names vary in spelling and case between rows; the ИНН does
not, so each operator gets one display name: its most frequent spelling. Columns are found by
their header names (extra or reordered columns are fine). A file with any bad row is rejected
whole, naming the line and field of each: a half-loaded plan would misroute silently.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from numident.routing.files import Problems, RegistryRows, column_positions, refuse_empty

COLUMNS = ("АВС/ DEF", "От", "До", "Емкость", "Оператор", "Регион", "ИНН")
_INN = re.compile(r"\d{10}|\d{12}")


@dataclass(frozen=True)
class PlanRange:
    start: int
    end: int
    inn: str
    region: str
    line: int


@dataclass(frozen=True)
class Plan:
    ranges: list[PlanRange]
    names: dict[str, str]
    """The most frequent spelling of each operator's name, by ИНН."""


def read_plan(path: Path, progress: Callable[[int], None] | None = None) -> Plan:
    """Parse and check the whole file; :class:`~numident.errors.InvalidFile` if any row is bad."""
    problems = Problems(path)
    ranges: list[PlanRange] = []
    spellings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    rows = iter(RegistryRows(path, ";", problems))
    _, header = next(rows, (1, []))
    problems.raise_if_any()
    at = column_positions(path, header, COLUMNS)
    width = max(at.values()) + 1
    for line, row in rows:
        if progress is not None and line % 1000 == 0:
            progress(1000)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            problems.add(line, "(row)", f"{len(row)} fields, the header names {width}")
            continue
        parsed = _range(row, at, line, problems)
        if parsed is not None:
            ranges.append(parsed)
            spellings[parsed.inn][row[at["Оператор"]].strip()] += 1
    problems.raise_if_any()
    refuse_empty(path, len(ranges))
    ranges.sort(key=lambda r: r.start)
    for before, after in itertools.pairwise(ranges):
        if after.start <= before.end:
            problems.add(after.line, "От", f"range overlaps the range of line {before.line}")
    problems.raise_if_any()
    names = {inn: counts.most_common(1)[0][0] for inn, counts in spellings.items()}
    return Plan(ranges, names)


def _range(row: list[str], at: dict[str, int], line: int,
           problems: Problems) -> PlanRange | None:
    code, first, last = (row[at[c]].strip() for c in ("АВС/ DEF", "От", "До"))
    capacity, inn = row[at["Емкость"]].strip(), row[at["ИНН"]].strip()
    for field, value, size in (("АВС/ DEF", code, 3), ("От", first, 7), ("До", last, 7)):
        if not (value.isascii() and value.isdigit() and len(value) == size):
            problems.add(line, field, f"{value!r} is not {size} digits")
            return None
    start, end = int(code + first), int(code + last)
    if end < start:
        problems.add(line, "До", f"{last} is before {first}")
        return None
    if not (capacity.isascii() and capacity.isdigit()) or int(capacity) != end - start + 1:
        problems.add(line, "Емкость", f"{capacity!r} is not the size of {first}..{last} "
                     f"({end - start + 1})")
        return None
    if _INN.fullmatch(inn) is None:
        problems.add(line, "ИНН", f"{inn!r} is not a 10- or 12-digit ИНН")
        return None
    if not inn_checksum_holds(inn):
        problems.add(line, "ИНН", f"{inn!r} fails the ИНН check digits (mistyped or cut off)")
        return None
    if not row[at["Оператор"]].strip():
        problems.add(line, "Оператор", "the operator's name is empty")
        return None
    return PlanRange(start, end, inn, row[at["Регион"]].strip(), line)


_INN_WEIGHTS = ((2, 4, 10, 3, 5, 9, 4, 6, 8), (7, 2, 4, 10, 3, 5, 9, 4, 6, 8),
                (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))


def inn_checksum_holds(inn: str) -> bool:
    """The check digits of a 10-digit (one) or 12-digit (two) ИНН, per the tax service's rule.

    They catch a mistyped ИНН, and the last row of a file cut off inside its ИНН column: a
    12-digit ИНН cut to 10 digits still has the right length.
    """
    digits = [int(c) for c in inn]
    weights = _INN_WEIGHTS[:1] if len(digits) == 10 else _INN_WEIGHTS[1:]
    return all(sum(w * d for w, d in zip(ws, digits, strict=False)) % 11 % 10
               == digits[len(ws)] for ws in weights)
