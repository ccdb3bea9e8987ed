"""The regulator's export from a real database, verified offline, and every way of forging
it found: a changed, reordered or removed entry, a forged checkpoint, a truncated file."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from audit_fixtures import checkpoint, drop_triggers, write_operator_entries
from sqlalchemy import Engine, text

from numident.audit.bundle import InvalidBundle, export, period, verify_bundle
from numident.audit.checkpoints import sign_checkpoint
from numident.audit.log import Side, audit_log
from numident.client.keys import PrivateKey, generate_key
from numident.errors import Conflict, InvalidInput, NotFound

EngineFor = Callable[[Side], Engine]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _three_days(engine: Engine, key: PrivateKey) -> None:
    """Ten entries on each of 1, 2 and 3 November, with a checkpoint signed after each day."""
    chain = audit_log("operator")
    for day in range(3):
        write_operator_entries(engine, 10, datetime(2026, 11, 1 + day, 10, tzinfo=UTC))
        checkpoint(engine, chain, key, datetime(2026, 11, 1 + day, 23, tzinfo=UTC))


@pytest.fixture
def bundle(engine_for: EngineFor, key: PrivateKey, tmp_path: Path) -> Path:
    """An export of 2 November: entries 11..20 and the checkpoint of entry 20."""
    engine = engine_for("operator")
    _three_days(engine, key)
    out = tmp_path / "audit-2026-11-02.zip"
    done = export(engine, audit_log("operator"), key, date(2026, 11, 2), date(2026, 11, 2),
                  out, NOW)
    assert (done.first_seq, done.last_seq, done.count, done.checkpoints) == (11, 20, 10, 1)
    return out


def test_an_export_verifies_offline_with_the_public_key(bundle: Path, key: PrivateKey) -> None:
    checked = verify_bundle(bundle, key.public())
    assert (checked.log, checked.period, checked.count, checked.first_seq, checked.last_seq,
            checked.checkpoints) == ("operator", ("2026-11-02", "2026-11-02"), 10, 11, 20, 1)
    with zipfile.ZipFile(bundle) as archive:
        assert sorted(archive.namelist()) == ["SHA256SUMS", "checkpoints.jwt", "entries.jsonl",
                                              "manifest.json", "statement.jwt"]
        manifest = json.loads(archive.read("manifest.json"))
        lines = archive.read("entries.jsonl").splitlines()
    assert manifest["hashAlgorithm"] == "SHA-256"
    assert manifest["canonicalization"].startswith("RFC 8785")
    assert [json.loads(line)["entry"]["request_id"] for line in lines] == [
        f"r-{n}" for n in range(10)]
    assert {json.loads(line)["entry"]["at"][:10] for line in lines} == {"2026-11-02"}


def _rewrite(path: Path, member: str, change: Callable[[bytes], bytes]) -> None:
    """Replace one member of the zip, as someone editing the export would."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[member] = change(members[member])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())


def _lines(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    return lambda data: b"".join(line + b"\n" for line in change(data.splitlines()))


def _edit_entry(lines: list[bytes], index: int = 3) -> list[bytes]:
    """An entry's content changed, the line kept in canonical form."""
    lines[index] = lines[index].replace(b'"result":"confirmed"', b'"result":"not_found"')
    return lines


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def _forged_checkpoint(_: bytes) -> bytes:
    return (sign_checkpoint(generate_key(), "operator", 20, "00" * 32, NOW) + "\n").encode()


FORGERIES = {
    "changed entry": ("entries.jsonl", _lines(_edit_entry),
                      "entry 15 (line 5) does not follow entry 14 (line 4): line 4 was changed"),
    "changed last entry": ("entries.jsonl", _lines(lambda lines: _edit_entry(lines, 9)),
                           "checkpoints.jwt line 1 signed entry 20 with another hash"),
    "reordered entries": ("entries.jsonl", _lines(_swap),
                          "entry 13 is missing (the next is 14): an entry was removed or moved"),
    "removed last entry": ("entries.jsonl", _lines(lambda lines: lines[:-1]),
                           "entries were removed (truncated)"),
    "removed first entry": ("entries.jsonl", _lines(lambda lines: lines[1:]),
                            "entry 11 is missing"),
    "removed middle entry": ("entries.jsonl", _lines(lambda lines: lines[:4] + lines[5:]),
                             "entry 15 is missing (the next is 16)"),
    "forged checkpoint": ("checkpoints.jwt", _forged_checkpoint,
                          "checkpoints.jwt line 1 is signed by key"),
    "edited manifest": ("manifest.json",
                        lambda data: data.replace(b'"lastSeq": 20', b'"lastSeq": 25'),
                        "SHA256SUMS line 4: manifest.json does not match"),
    "not canonical": ("entries.jsonl", _lines(lambda lines: [lines[0].replace(b":", b": ", 1),
                                                             *lines[1:]]),
                      "line 1 is not in RFC 8785 canonical form"),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_export_is_refused_naming_what_is_wrong(bundle: Path, key: PrivateKey,
                                                        forgery: str) -> None:
    member, change, words = FORGERIES[forgery]
    _rewrite(bundle, member, change)
    with pytest.raises(InvalidBundle) as refused:
        verify_bundle(bundle, key.public())
    assert words in str(refused.value)


def test_a_truncated_zip_is_refused(bundle: Path, key: PrivateKey) -> None:
    bundle.write_bytes(bundle.read_bytes()[:-200])
    with pytest.raises(InvalidBundle, match="truncated"):
        verify_bundle(bundle, key.public())


def test_an_export_checked_with_another_key_is_refused(bundle: Path) -> None:
    with pytest.raises(InvalidBundle, match=r"statement\.jwt is signed by key"):
        verify_bundle(bundle, generate_key().public())


def test_a_broken_chain_is_not_exported(engine_for: EngineFor, key: PrivateKey,
                                        tmp_path: Path) -> None:
    """An export signs only a chain that verifies from its first entry; nothing is written."""
    engine = engine_for("operator")
    _three_days(engine, key)
    with engine.begin() as conn:
        drop_triggers(conn, "audit")
        conn.execute(text("UPDATE audit SET actor = 'someone' WHERE seq = 5"))
    out = tmp_path / "export.zip"
    with pytest.raises(Conflict, match="entry 5"):
        export(engine, audit_log("operator"), key, date(2026, 11, 2), date(2026, 11, 2), out,
               NOW)
    assert [p.name for p in tmp_path.iterdir() if "export" in p.name] == []


def test_a_period_without_entries_writes_nothing(engine_for: EngineFor, key: PrivateKey,
                                                 tmp_path: Path) -> None:
    engine = engine_for("operator")
    _three_days(engine, key)
    with pytest.raises(NotFound, match=r"no audit entry in 2026-10-01\.\.2026-10-31"):
        export(engine, audit_log("operator"), key, date(2026, 10, 1), date(2026, 10, 31),
               tmp_path / "export.zip", NOW)
    assert [p.name for p in tmp_path.iterdir() if "export" in p.name] == []


def test_reversed_and_future_periods_are_bad_input() -> None:
    today = date(2026, 12, 1)
    with pytest.raises(InvalidInput, match="reversed"):
        period(date(2026, 11, 3), date(2026, 11, 2), today)
    with pytest.raises(InvalidInput, match="future"):
        period(date(2026, 11, 30), date(2026, 12, 2), today)
    assert period(date(2026, 11, 30), today, today) == (
        datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
