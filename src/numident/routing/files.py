"""Reading the national registries' text files: encoding detection and header lookup."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from pathlib import Path

from numident.errors import FileProblem, InvalidFile

MAX_PROBLEMS = 1000
"""A file with more bad rows than this is reported with the first ones only."""


def detect_encoding(path: Path, sample: int = 1 << 20) -> str:
    """``utf-8-sig`` when the file decodes as UTF-8 (with or without BOM), else ``cp1251``.

    The registries publish both. Windows-1251 text almost never forms valid UTF-8 sequences,
    so a strict UTF-8 decode of the whole file is a reliable test; it is done incrementally so
    that a 20-million-line file is not held in memory.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(sample):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8-sig"


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


def chunked(rows: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
