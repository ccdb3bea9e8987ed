"""The hash chain's rules, pure: canonical records, their links, and the walk that checks them.

Entry ``n`` of a chain is the record ``{"seq": n, "prev": H(n-1), "entry": {...}}`` encoded
with the JSON Canonicalization Scheme (RFC 8785); its hash ``H(n)`` is the lowercase hex
SHA-256 of those bytes, and ``H(0)`` is :data:`GENESIS` (64 zeros). Changing, removing,
inserting or reordering an entry changes every hash from there on, so comparing the hashes
with a signed checkpoint of a later head shows it, whoever had write access to the rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Literal

import rfc8785

GENESIS = "0" * 64
"""The ``prev`` of the first entry of every chain."""
HASH_ALGORITHM = "SHA-256"
CANONICALIZATION = "RFC 8785"


def timestamp(moment: datetime) -> str:
    """An entry's time in its canonical form: UTC, microseconds, ``Z``; one text per instant."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(value: Any) -> bytes:
    r"""``rfc8785.dumps(value)``: the same bytes, refusing what it refuses, at a fraction of its
    cost for what audit entries hold, objects of strings.

    The library writes one value at a time in Python. Here the structure (RFC 8785 section
    3.2.3: members in the order of their keys' UTF-16 code units, no whitespace) is laid out
    with each object's key order worked out once per set of keys, and strings are escaped by
    the standard library's C encoder, whose escapes are exactly those of section 3.2.2.2
    (``\"`` and ``\\``; ``\b \t \n \f \r``; ``\u00xx`` in lowercase for the other
    controls; any other character as itself). Numbers and literals are the library's.
    """
    try:
        return _text(value).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, as the library refuses it
        raise rfc8785.CanonicalizationError("input contains non-UTF-8 codepoints") from exc


def _text(value: Any) -> str:
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join([
            name + (encode_basestring(item) if isinstance(item := value[key], str) else _text(item))
            for key, name in _members(tuple(value))]) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join([_text(item) for item in value]) + "]"
    return rfc8785.dumps(value).decode("ascii")  # numbers, true, false; refuses the rest


@lru_cache(maxsize=256)
def _members(keys: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    """The keys of an object in canonical order, each with its text before the value."""
    if not all(isinstance(key, str) for key in keys):
        raise rfc8785.CanonicalizationError("object keys must be strings")
    return tuple((key, encode_basestring(key) + ":")
                 for key in sorted(keys, key=lambda key: key.encode("utf-16be")))


def record(seq: int, prev: str, entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of entry ``seq`` linked to ``prev``: what its hash is taken over,
    and one line of an export. The record's members are in key order (``entry``, ``prev``,
    ``seq``), so it is their canonical forms put together."""
    return b"".join((b'{"entry":', canonical(dict(entry)), b',"prev":', canonical(prev),
                     b',"seq":', canonical(seq), b"}"))


def digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def link(seq: int, prev: str, entry: Mapping[str, Any]) -> str:
    """``H(seq)``: the hash of entry ``seq`` holding ``entry``, after an entry hashed ``prev``."""
    return digest(record(seq, prev, entry))


Kind = Literal["changed", "removed", "inserted", "checkpoint"]


@dataclass(frozen=True)
class Break:
    """The first place where a chain stops matching: the entry (sequence number) and what
    was done to it, in words for the person who reads the report."""

    seq: int
    kind: Kind
    message: str


@dataclass
class Walk:
    """Checks a chain entry by entry, in sequence order, holding only the last hash.

    ``step`` takes each stored entry (its ``seq``, the hash stored with it and its content)
    and returns the first :class:`Break` or None; ``checkpoint`` compares a signed head with
    the hash computed for its entry. ``seq``/``head`` are the last entry verified.
    """

    seq: int = 0
    head: str = GENESIS
    label: str = "entry"
    line: bytes = b""
    """The canonical record of the last entry verified."""

    def step(self, seq: int, stored: str | None, entry: Mapping[str, Any],
             where: str = "") -> Break | None:
        expected = self.seq + 1
        if seq < expected:
            return Break(seq, "inserted", f"{self.label} {seq}{where} appears a second time: "
                         "an entry was inserted or renumbered")
        if seq > expected:
            return Break(expected, "removed", f"{self.label} {expected} is missing (the next "
                         f"is {seq}): an entry was removed or moved")
        line = record(seq, self.head, entry)
        computed = digest(line)
        if computed != stored:
            return Break(seq, "changed", f"{self.label} {seq}{where} does not match its hash: "
                         "it was changed, inserted or moved (or the entry before it was "
                         "changed and rehashed)")
        self.seq, self.head, self.line = seq, computed, line
        return None

    def checkpoint(self, seq: int, signed_hash: str, name: str) -> Break | None:
        """Compare checkpoint ``name`` (entry ``seq`` signed as ``signed_hash``) with the walk,
        which must just have verified entry ``seq``."""
        if seq != self.seq:
            return Break(self.seq + 1, "removed", f"{name} signs entry {seq}, but the chain "
                         f"ends at entry {self.seq}: entries were removed")
        if signed_hash != self.head:
            return Break(seq, "checkpoint", f"{name} signed entry {seq} with another hash: "
                         f"entries up to {seq} were changed, removed, inserted or reordered "
                         "and the chain rehashed")
        return None
