"""The regulator's export: a period's entries and the signed heads that cover them, in a zip.

Members (docs/audit.md gives the whole format):

- ``entries.jsonl``: the chain's records of the period, one per line, each the exact RFC 8785
  bytes whose SHA-256 is the entry's hash (and the next line's ``prev``);
- ``checkpoints.jwt``: the chain's checkpoints that fall within those entries, one compact JWS
  per line, as the gateway signed them when it ran;
- ``statement.jwt``: signed at export time: the period, the first entry's ``seq`` and
  ``prev``, the last entry's ``seq`` and ``hash``, the count and the SHA-256 of both files;
- ``manifest.json``: what each member is, the formats and the hash algorithm, in words;
- ``SHA256SUMS``: the digests of the other members, for ``sha256sum -c``.

An export is made only from a chain that verifies from its first entry, and verifying one
needs nothing but the bundle and the operator's public key.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import rfc8785
from sqlalchemy import Engine, func, select

from numident.audit.chain import CANONICALIZATION, GENESIS, HASH_ALGORITHM, Walk, digest
from numident.audit.checkpoints import (
    InvalidCheckpoint,
    checkpoint_claims,
    key_lookup,
    read,
    sign,
)
from numident.audit.log import AuditLog
from numident.audit.sealer import seal
from numident.audit.verify import Broken, Checkpoint, walk_chain
from numident.client.keys import PrivateKey, PublicKey
from numident.errors import Conflict, InvalidInput, NotFound
from numident.storage.database import read_only

FORMAT = "numident-audit-export/1"
ENTRIES, CHECKPOINTS, STATEMENT = "entries.jsonl", "checkpoints.jwt", "statement.jwt"
MANIFEST, SUMS = "manifest.json", "SHA256SUMS"


@dataclass(frozen=True)
class Exported:
    path: Path
    count: int
    first_seq: int
    last_seq: int
    checkpoints: int


@dataclass(frozen=True)
class BundleVerified:
    log: str
    period: tuple[str, str]
    count: int
    first_seq: int
    last_seq: int
    checkpoints: int
    signed_at: str


class InvalidBundle(Exception):
    """An export that does not verify; the text names the member, line or entry at fault."""


def period(start: date, end: date, today: date) -> tuple[datetime, datetime]:
    """The instants of the UTC days ``start``..``end`` (both included): ``[from, to)``.
    Raises :class:`InvalidInput` for a reversed period or one that ends after ``today``."""
    if end < start:
        raise InvalidInput(f"the period is reversed: --from {start} is after --to {end}")
    if end > today:
        raise InvalidInput(f"the period ends in the future: --to {end} is after today "
                           f"({today}, UTC)")
    return (datetime.combine(start, time(), UTC),
            datetime.combine(end + timedelta(days=1), time(), UTC))


def export(engine: Engine, chain: AuditLog, key: PrivateKey, start: date, end: date,
           out: Path, now: datetime) -> Exported:
    """Write the entries of the days ``start``..``end`` to the zip ``out`` (replaced whole,
    never left half-written). Entries are the contiguous run of the chain from the first entry
    stamped in the period to the last one, so an entry written late with an earlier time may
    lie between them. Raises :class:`Conflict` when the chain does not verify and
    :class:`NotFound` when the period holds no entry."""
    since, until = period(start, end, now.astimezone(UTC).date())
    seal(engine, chain)
    table = chain.table
    with read_only(engine) as conn:
        first = conn.scalar(select(func.min(table.c.seq)).where(table.c.at >= since))
        last = conn.scalar(select(func.max(table.c.seq)).where(table.c.at < until))
        if first is None or last is None or last < first:
            raise NotFound(f"no audit entry in {start}..{end}: nothing was written",
                           code="NO_ENTRIES")
        with _replacing(out) as handle, zipfile.ZipFile(handle, "w",
                                                        zipfile.ZIP_DEFLATED) as bundle:
            writer = _Writer(first, last)
            with bundle.open(ENTRIES, "w") as entries:
                writer.entries = entries
                result = walk_chain(conn, chain, key_lookup(key.public()), writer.visit)
            if isinstance(result, Broken):
                raise Conflict(f"the audit chain does not verify, nothing was exported: "
                               f"{result.problem.message}", code="AUDIT_CHAIN_BROKEN")
            files = {ENTRIES: writer.entries_digest.hexdigest(),
                     CHECKPOINTS: digest(writer.checkpoint_lines())}
            claims = {**checkpoint_claims(chain.name, last, writer.last_hash, now),
                      "export": {"from": start.isoformat(), "to": end.isoformat(),
                                 "firstSeq": first, "prev": writer.anchor,
                                 "count": last - first + 1, "files": files}}
            statement = sign(key, claims) + "\n"
            bundle.writestr(CHECKPOINTS, writer.checkpoint_lines())
            bundle.writestr(STATEMENT, statement)
            manifest = _manifest(chain, key, claims, len(writer.checkpoints))
            bundle.writestr(MANIFEST, manifest)
            sums = {ENTRIES: files[ENTRIES], CHECKPOINTS: files[CHECKPOINTS],
                    STATEMENT: digest(statement.encode()), MANIFEST: digest(manifest)}
            bundle.writestr(SUMS, "".join(f"{d}  {n}\n" for n, d in sums.items()))
    return Exported(out, last - first + 1, first, last, len(writer.checkpoints))


class _Writer:
    """Writes the period's records while the walk verifies the whole chain."""

    def __init__(self, first: int, last: int) -> None:
        self.first, self.last = first, last
        self.entries: Any = None
        self.entries_digest = hashlib.sha256()
        self.anchor, self.last_hash = GENESIS, GENESIS
        self.checkpoints: list[str] = []

    def visit(self, walk: Walk, signs: Checkpoint | None) -> None:
        if walk.seq == self.first - 1:
            self.anchor = walk.head
        if self.first <= walk.seq <= self.last:
            line = walk.line + b"\n"
            self.entries.write(line)
            self.entries_digest.update(line)
            self.last_hash = walk.head
            if signs is not None:
                self.checkpoints.append(signs.jws)

    def checkpoint_lines(self) -> bytes:
        return "".join(f"{token}\n" for token in self.checkpoints).encode("ascii")


def _manifest(chain: AuditLog, key: PrivateKey, claims: dict[str, Any], checkpoints: int
              ) -> bytes:
    window = claims["export"]
    manifest = {
        "format": FORMAT,
        "log": chain.name,
        "period": {"from": window["from"], "to": window["to"],
                   "days": "UTC days, both included"},
        "exportedAt": claims["signedAt"],
        "hashAlgorithm": HASH_ALGORITHM,
        "canonicalization": f"{CANONICALIZATION} (JSON Canonicalization Scheme)",
        "signingKey": {"kid": key.kid, "alg": key.interoperable_algorithm},
        "members": {
            ENTRIES: {"mediaType": "application/jsonl", "count": window["count"],
                      "firstSeq": window["firstSeq"], "lastSeq": claims["seq"],
                      "firstPrev": window["prev"], "lastHash": claims["hash"],
                      "fields": list(chain.content),
                      "description": "one record per line: the RFC 8785 encoding of "
                      '{"seq", "prev", "entry"}; the hex SHA-256 of a line (without its '
                      'newline) is the entry\'s hash and the next line\'s "prev"; the first '
                      f'entry of the chain has prev "{GENESIS}"'},
            CHECKPOINTS: {"mediaType": "application/jwt", "count": checkpoints,
                          "description": "the chain's checkpoints within these entries, one "
                          'compact JWS per line; claims "log", "seq", "hash", "iat", '
                          '"signedAt": the operator signed that entry seq had that hash'},
            STATEMENT: {"mediaType": "application/jwt",
                        "description": "a checkpoint of the last entry signed at export time, "
                        'whose claim "export" gives the period, the first entry\'s "firstSeq" '
                        'and "prev", the "count" and the SHA-256 of entries.jsonl and '
                        "checkpoints.jwt"},
            SUMS: {"mediaType": "text/plain", "description": "sha256sum -c format"},
        },
        "verify": "numident audit verify-export FILE --public-key KEY (docs/audit.md)",
    }
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A file written beside ``path`` and moved onto it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def verify_bundle(path: Path, public_key: PublicKey) -> BundleVerified:
    """Check an export offline against the operator's ``public_key``; raises
    :class:`InvalidBundle` naming the first thing that does not hold."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidBundle(f"{path} is not a readable zip archive (truncated?): {exc}") \
            from exc
    with archive:
        names = set(archive.namelist())
        missing = sorted({ENTRIES, CHECKPOINTS, STATEMENT, MANIFEST, SUMS} - names)
        if missing:
            raise InvalidBundle(f"the bundle lacks {', '.join(missing)}: truncated or not an "
                                "audit export")
        try:
            return _verify_members(archive, public_key)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise InvalidBundle(f"the bundle is damaged or truncated: {exc}") from exc


def _verify_members(archive: zipfile.ZipFile, public_key: PublicKey) -> BundleVerified:
    manifest = _json(archive.read(MANIFEST), MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidBundle(f"{MANIFEST} does not declare the format {FORMAT}")
    side = str(manifest.get("log"))
    keys = key_lookup(public_key)
    try:
        _, claims = read(archive.read(STATEMENT).decode("ascii", "replace"), keys, side)
    except InvalidCheckpoint as exc:
        raise InvalidBundle(f"{STATEMENT} {exc}: forged or altered") from exc
    window = claims.get("export")
    if not isinstance(window, dict) or not isinstance(window.get("firstSeq"), int) \
            or not isinstance(window.get("prev"), str):
        raise InvalidBundle(f"{STATEMENT} is a checkpoint, not an export statement")
    signed = list(_checkpoints(archive, keys, side, window["firstSeq"], claims["seq"]))
    checkpoints = len(signed)
    walk = Walk(seq=window["firstSeq"] - 1, head=window["prev"])
    count = 0
    with archive.open(ENTRIES) as entries:
        for number, line in enumerate(entries, start=1):
            seq, prev, entry = _record(line, number)
            if seq == walk.seq + 1 and prev != walk.head:
                raise InvalidBundle(
                    f"{ENTRIES}: entry {seq} (line {number}) does not follow "
                    + (f"entry {walk.seq} (line {number - 1}): line {number - 1} was changed, "
                       f"or line {number} was inserted or moved" if number > 1 else
                       f"the entry {STATEMENT} signs before it: entries were removed or moved"))
            problem = walk.step(seq, digest(line.rstrip(b"\n")), entry, f" (line {number})")
            if problem is not None:
                raise InvalidBundle(f"{ENTRIES}: {problem.message}")
            count += 1
            while signed and signed[0][0] == walk.seq:
                problem = walk.checkpoint(*signed.pop(0))
                if problem is not None:
                    raise InvalidBundle(f"{CHECKPOINTS}: {problem.message}")
    if walk.seq != claims["seq"] or count != window.get("count"):
        raise InvalidBundle(f"{ENTRIES} ends at entry {walk.seq} after {count} entries, but "
                            f"{STATEMENT} signs entries {window['firstSeq']}..{claims['seq']}"
                            ": entries were removed (truncated)")
    problem = walk.checkpoint(claims["seq"], claims["hash"], STATEMENT)
    if problem is not None:
        raise InvalidBundle(problem.message)
    files = window.get("files") or {}
    for name in (ENTRIES, CHECKPOINTS):
        if digest(archive.read(name)) != files.get(name):
            raise InvalidBundle(f"{name} does not match the SHA-256 that {STATEMENT} signs")
    _check_sums(archive)
    described = manifest.get("members", {}).get(ENTRIES, {})
    if (described.get("firstSeq"), described.get("lastSeq"), described.get("count")) != \
            (window["firstSeq"], claims["seq"], count) \
            or manifest.get("period", {}).get("from") != window.get("from") \
            or manifest.get("period", {}).get("to") != window.get("to"):
        raise InvalidBundle(f"{MANIFEST} describes other entries or another period than "
                            f"{STATEMENT} signs")
    return BundleVerified(side, (str(window.get("from")), str(window.get("to"))), count,
                          window["firstSeq"], claims["seq"], checkpoints,
                          str(claims.get("signedAt")))


def _checkpoints(archive: zipfile.ZipFile, keys: Any, side: str, first: int, last: int
                 ) -> Iterator[tuple[int, str, str]]:
    previous = first - 1
    for number, token in enumerate(archive.read(CHECKPOINTS).decode("ascii", "replace")
                                   .splitlines(), start=1):
        name = f"{CHECKPOINTS} line {number}"
        try:
            _, claims = read(token, keys, side)
        except InvalidCheckpoint as exc:
            raise InvalidBundle(f"{name} {exc}: forged or altered") from exc
        if not previous < claims["seq"] <= last:
            raise InvalidBundle(f"{name} signs entry {claims['seq']}, out of order or outside "
                                f"the entries {first}..{last}")
        previous = claims["seq"]
        yield claims["seq"], claims["hash"], name


def _record(line: bytes, number: int) -> tuple[int, str, dict[str, Any]]:
    text = line.rstrip(b"\n")
    value = _json(text, f"{ENTRIES} line {number}")
    if not isinstance(value, dict) or set(value) != {"seq", "prev", "entry"} \
            or not isinstance(value["seq"], int) or not isinstance(value["prev"], str) \
            or not isinstance(value["entry"], dict):
        raise InvalidBundle(f"{ENTRIES} line {number} is not a record "
                            '{"seq", "prev", "entry"}')
    if rfc8785.dumps(value) != text:
        raise InvalidBundle(f"{ENTRIES} line {number} is not in RFC 8785 canonical form: "
                            "it was edited")
    return value["seq"], value["prev"], value["entry"]


def _json(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidBundle(f"{name} is not valid JSON: {exc}") from exc


def _check_sums(archive: zipfile.ZipFile) -> None:
    for number, line in enumerate(archive.read(SUMS).decode("ascii", "replace").splitlines(),
                                  start=1):
        expected, _, name = line.partition("  ")
        if name not in archive.namelist() or digest(archive.read(name)) != expected:
            raise InvalidBundle(f"{SUMS} line {number}: {name or '?'} does not match its "
                                "digest")
