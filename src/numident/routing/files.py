"""Reading the national registries' text files defensively: encoding, line checks, headers.

A registry file is text, UTF-8 (with or without BOM) or Windows-1251, one row a line. Whatever
else arrives (UTF-16, binary data, a UTF-8 file with a broken byte, a 200 KB field, control
characters inside a name) is reported as a :class:`~numident.errors.FileProblem` naming the
line and the field, never as a decoding or ``csv`` exception: the file is then refused whole.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

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
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
_NEWLINE = ord("\n")
_BLOCK = 1 << 20
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


def _refuse(path: Path | str, message: str) -> None:
    raise InvalidFile(str(path), [FileProblem(1, WHOLE_FILE, message)])


def _split(data: bytes) -> list[bytes]:
    """The lines of ``data``, ends kept, cut at line feeds only (not at a stray CR)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _skip_line(handle: BinaryIO) -> None:
    """Read past the rest of an over-long line without holding it."""
    while chunk := handle.readline(MAX_LINE_BYTES):
        if chunk.endswith(b"\n"):
            return


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
        # Known before the rows are checked, so that a problem can name its column.
        with path.open("rb") as handle:
            first = handle.readline(MAX_LINE_BYTES).decode(self.encoding, errors="replace")
        self.header: list[str] = next(csv.reader([first], delimiter=delimiter), [])

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        with self.path.open("rb") as handle:
            reader = csv.reader(self._lines(handle), delimiter=self.delimiter)
            start = 1
            try:
                for row in reader:
                    if reader.line_num != start:
                        # A registry row is one line: a quote left open swallows the lines
                        # after it, and the row is reported where it began.
                        spans = next((i for i, cell in enumerate(row) if "\n" in cell), 0)
                        self.problems.add(start, self._column(spans), "a quote opened here "
                                          f"is not closed before line {reader.line_num}")
                    else:
                        yield start, row
                    start = reader.line_num + 1
            except csv.Error as exc:
                self.problems.add(start, "(row)", f"cannot be read: {exc}")

    def _lines(self, handle: BinaryIO) -> Iterator[str]:
        """The file's lines, a megabyte at a time; a block with any problem line by line.

        Decoding and searching whole blocks runs in C; the line-by-line path that names
        each problem is taken only where a block fails those checks.
        """
        line, tail = 0, b""
        while block := handle.read(_BLOCK):
            data = tail + block
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) > MAX_LINE_BYTES:
                line += 1
                self._too_long(line, data)
                _skip_line(handle)
                tail = b""
                yield "\n"
                continue
            data, tail = data[:cut], data[cut:]
            lines = self._fast(data)
            if lines is None:
                lines = list(self._slow(data, line))
            line += data.count(b"\n")
            yield from lines
        if tail:
            yield from self._fast(tail) or self._slow(tail, line)

    def _fast(self, data: bytes) -> list[str] | None:
        """``data``'s lines if none is too long, undecodable or holds a control character."""
        breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE)
        if len(breaks) and (np.diff(breaks, prepend=-1).max() > MAX_LINE_BYTES):
            return None
        if not len(breaks) and len(data) > MAX_LINE_BYTES:
            return None
        try:
            text = data.decode(self.encoding)
        except UnicodeDecodeError:
            return None
        if _CONTROL_IN_TEXT.search(text):
            return None
        return io.StringIO(text, newline="").readlines()

    def _slow(self, data: bytes, line: int) -> Iterator[str]:
        for raw in _split(data):
            line += 1
            if len(raw) > MAX_LINE_BYTES:
                self._too_long(line, raw)
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

    def _too_long(self, line: int, raw: bytes) -> None:
        self.problems.add(line, self._field(raw, MAX_LINE_BYTES),
                          f"longer than {MAX_LINE_BYTES} bytes: not a registry row")

    def _field(self, line: bytes | str, position: int) -> str:
        """The header name of the column at ``position`` of a raw line (quotes ignored)."""
        before = line[:position]
        index = before.count(self.delimiter.encode()) if isinstance(before, bytes) \
            else before.count(self.delimiter)
        return self._column(index)

    def _column(self, index: int) -> str:
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


def refuse_empty(source: Path | str, rows: int) -> None:
    """A snapshot with no rows is never the truth: it would empty the active data."""
    if rows == 0:
        _refuse(source, "the file holds no rows (only a header, or nothing)")
