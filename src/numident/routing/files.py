"""Reading the national registries' text files defensively: encoding, line checks, headers.

A registry file is text, UTF-8 (with or without BOM) or Windows-1251, one row a line. Whatever
else arrives (UTF-16, binary data, a UTF-8 file with a broken byte, a 200 KB field, control
characters inside a name) is reported as a :class:`~numident.errors.FileProblem` naming the
line and the field, never as a decoding or ``csv`` exception: the file is then refused whole.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from numident.errors import FileProblem, InvalidFile

MAX_PROBLEMS = 1000
"""A file with more bad rows than this is reported with the first ones only."""
MAX_LINE_BYTES = 1 << 16
"""A registry row is a few hundred bytes; a longer line is junk, not a row."""
WHOLE_FILE = "(file)"
"""The field named by problems that concern the file rather than one of its rows."""

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LABELS = {"utf-8-sig": "UTF-8", "cp1251": "Windows-1251"}
_SAMPLE = 1 << 16


def detect_encoding(path: Path, sample: int = 1 << 20) -> str:
    """``utf-8-sig`` when the file is UTF-8 (with or without BOM), else ``cp1251``.

    The registries publish both. Windows-1251 Cyrillic almost never forms valid UTF-8, so the
    first non-ASCII byte decides: a file whose text decodes as UTF-8 up to its first bad byte,
    and held non-ASCII UTF-8 before it, is a UTF-8 file with a broken byte (reported on its
    line), not a Windows-1251 file. The file is read in chunks, never held in memory.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    seen_non_ascii = False
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(sample):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    seen_non_ascii = seen_non_ascii or not chunk[:exc.start].isascii()
                    raise
                seen_non_ascii = seen_non_ascii or not chunk.isascii()
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "utf-8-sig" if seen_non_ascii else "cp1251"
    return "utf-8-sig"


def refuse_non_text(path: Path) -> None:
    """Refuse UTF-16/32 and binary files at once, before reading them row by row.

    A row-by-row report of such a file would list a thousand meaningless problems; one
    problem saying what the file is tells the user what to do.
    """
    with path.open("rb") as handle:
        head = handle.read(_SAMPLE)
    for bom, name in _BOMS:
        if head.startswith(bom):
            _refuse(path, f"the file is {name} text; registry files are UTF-8 or Windows-1251")
    # Text has no NUL bytes; UTF-16 without a BOM has one in every other byte, binary data
    # has them scattered. A stray NUL inside a row is reported on its line instead.
    if head.count(0) > max(len(head) // 1000, 2):
        _refuse(path, "the file holds binary data (NUL bytes), not UTF-8 or Windows-1251 text")


def _refuse(path: Path, message: str) -> None:
    raise InvalidFile(str(path), [FileProblem(1, WHOLE_FILE, message)])


class Problems:
    """Collects bad rows; the file is rejected whole when any were found."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[FileProblem] = []
        self.total = 0

    def add(self, line: int, field: str, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(FileProblem(line, field, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise InvalidFile(str(self.path), self.items, total=self.total)


class RegistryRows:
    """The rows of a registry file as ``(line, cells)``, the header row first (line 1).

    Each physical line is checked before the ``csv`` parser sees it: longer than
    :data:`MAX_LINE_BYTES`, not valid in the file's encoding, or holding a control character
    (NUL, a stray carriage return inside a name) makes it a problem naming the line and the
    field, and the line is passed on as empty. A quoting error that ``csv`` itself finds ends
    the reading with a problem on its line. ``problems`` collects all of these.
    """

    def __init__(self, path: Path, delimiter: str, problems: Problems) -> None:
        refuse_non_text(path)
        self.path = path
        self.delimiter = delimiter
        self.problems = problems
        self.encoding = detect_encoding(path)
        self.header: list[str] = []

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with self.path.open("rb") as handle:
            reader = csv.reader(self._lines(handle), delimiter=self.delimiter)
            try:
                for row in reader:
                    if reader.line_num == 1:
                        self.header = row
                    yield reader.line_num, row
            except csv.Error as exc:
                self.problems.add(reader.line_num + 1, "(row)", f"cannot be read: {exc}")

    def _lines(self, handle: BinaryIO) -> Iterator[str]:
        line = 0
        while raw := handle.readline(MAX_LINE_BYTES + 1):
            line += 1
            if len(raw) > MAX_LINE_BYTES:
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                self.problems.add(line, self._field(raw, MAX_LINE_BYTES),
                                  f"longer than {MAX_LINE_BYTES} bytes: not a registry row")
                yield "\n"
                continue
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                self.problems.add(line, self._field(raw, exc.start),
                                  f"byte 0x{raw[exc.start]:02x} at position {exc.start + 1} is "
                                  f"not {_LABELS[self.encoding]} text")
                yield "\n"
                continue
            if found := _CONTROL.search(text.rstrip("\r\n")):
                self.problems.add(line, self._field(text, found.start()),
                                  f"control character U+{ord(found.group()):04X} at position "
                                  f"{found.start() + 1}")
                yield "\n"
                continue
            yield text

    def _field(self, line: bytes | str, position: int) -> str:
        """The header name of the column at ``position`` of a raw line (quotes ignored)."""
        before = line[:position]
        index = before.count(self.delimiter.encode()) if isinstance(before, bytes) \
            else before.count(self.delimiter)
        if not self.header:
            return "(header)"
        return self.header[index].strip() if index < len(self.header) else "(row)"


def normalise_header(name: str) -> str:
    return " ".join(name.replace("\ufeff", "").split()).casefold()


def column_positions(path: Path, header: Sequence[str],
                     wanted: Sequence[str]) -> dict[str, int]:
    """Position of each wanted column by name (case and spacing ignored); rejects if missing."""
    found = {normalise_header(name): i for i, name in enumerate(header)}
    missing = [name for name in wanted if normalise_header(name) not in found]
    if missing:
        raise InvalidFile(str(path), [FileProblem(1, name, "column is missing from the header")
                                      for name in missing])
    return {name: found[normalise_header(name)] for name in wanted}


def refuse_empty(path: Path, rows: int) -> None:
    """A snapshot with no rows is never the truth: it would empty the active data."""
    if rows == 0:
        _refuse(path, "the file holds no rows (only a header, or nothing)")
