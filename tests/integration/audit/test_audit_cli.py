"""``audit verify`` as a person types it, on both sides: what it verified, and exit 1 with
the entry named when the chain is broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_fixtures import checkpoint, drop_triggers, write_entries, write_possession_entries
from sqlalchemy import text
from typer.testing import CliRunner

from numident.audit.log import Side, audit_log
from numident.cli.main import app
from numident.client.keys import generate_key, save_public_key
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade


@pytest.mark.parametrize("side", ["operator", "messenger"])
def test_verify_reports_the_chain_and_names_an_edited_entry(
        side: Side, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "300")
    engine = create_database_engine(database_url)
    upgrade(engine, side)
    runner = CliRunner()
    title = "audit chain" if side == "operator" else "account audit chain"
    empty = runner.invoke(app, [side, "audit", "verify"], catch_exceptions=False)
    assert (empty.exit_code, empty.output) == (0, EMPTY[side])
    write_entries(side, engine, 5)
    intact = runner.invoke(app, [side, "audit", "verify"], catch_exceptions=False)
    assert intact.exit_code == 0, intact.output
    assert f"{title} intact: entries 1..5 verified, 0 checkpoints" in intact.output
    assert "entries 1..5 are chained but not yet signed by a checkpoint" in intact.output
    table = "audit" if side == "operator" else "account_audit"
    with engine.begin() as conn:
        drop_triggers(conn, table)
        conn.execute(text(f"DELETE FROM {table} WHERE seq = 2"))
    broken = runner.invoke(app, [side, "audit", "verify"], catch_exceptions=False)
    assert broken.exit_code == 1
    assert f"{title} broken at entry 2: entry 2 is missing (the next is 3)" in broken.output
    assert "entries 1..1 verified before it; no checkpoint was verified" in broken.output
    engine.dispose()


EMPTY = {"operator": "audit chain empty: no entry to verify yet\n",
         "messenger": "account audit chain empty: no entry to verify yet\n"
                      "possession audit chain empty: no entry to verify yet\n"}


def test_messenger_verify_names_a_possession_entry_changed_behind_the_triggers(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The possession trail is a chain of its own: with its triggers dropped, a refusal
    rewritten as a code sent is named by entry, id and time, after the account chain was
    reported intact, and verify exits 1."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "300")
    engine = create_database_engine(database_url)
    upgrade(engine, "messenger")
    write_entries("messenger", engine, 3)
    write_possession_entries(engine, 6)
    runner = CliRunner()
    intact = runner.invoke(app, ["messenger", "audit", "verify"], catch_exceptions=False)
    assert intact.exit_code == 0, intact.output
    assert "account audit chain intact: entries 1..3 verified" in intact.output
    assert "possession audit chain intact: entries 1..6 verified, 0 checkpoints" \
        in intact.output
    with engine.begin() as conn:
        drop_triggers(conn, "possession_audit")
        conn.execute(text("UPDATE possession_audit SET event = 'sent', reason = NULL "
                          "WHERE seq = 3"))
    broken = runner.invoke(app, ["messenger", "audit", "verify"], catch_exceptions=False)
    assert broken.exit_code == 1
    assert "account audit chain intact: entries 1..3 verified" in broken.output
    assert ("possession audit chain broken at entry 3: entry 3 (id 3, 2026-11-01 09:02:00) "
            "does not match its hash") in broken.output
    assert "entries 1..2 verified before it; no checkpoint was verified" in broken.output
    engine.dispose()


def test_checkpoints_of_a_former_key_verify_when_that_key_is_given(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a key change the old checkpoints are refused by the new key alone, and accepted
    with ``--public-key`` naming the former one."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "300")
    engine = create_database_engine(database_url)
    upgrade(engine, "operator")
    former = generate_key()
    write_entries("operator", engine, 4)
    checkpoint(engine, audit_log("operator"), former)
    save_public_key(former.public(), tmp_path / "former.jwk")
    runner = CliRunner()
    refused = runner.invoke(app, ["operator", "audit", "verify"], catch_exceptions=False)
    assert refused.exit_code == 1
    assert f"is signed by key '{former.kid}', which is not the key given" in refused.output
    accepted = runner.invoke(app, ["operator", "audit", "verify", "--public-key",
                                   str(tmp_path / "former.jwk")], catch_exceptions=False)
    assert accepted.exit_code == 0, accepted.output
    assert "the last good checkpoint signs entry 4" in accepted.output
    assert former.kid in accepted.output
    engine.dispose()


def test_verify_export_names_a_file_with_brackets_as_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path (or anything a message quotes) is text, not console markup."""
    monkeypatch.setenv("COLUMNS", "300")
    key = tmp_path / "public.pem"
    save_public_key(generate_key().public(), key)
    bundle = tmp_path / "[red]export[bold].zip"
    bundle.write_bytes(b"not a zip")
    refused = CliRunner().invoke(app, ["audit", "verify-export", str(bundle),
                                       "--public-key", str(key)], catch_exceptions=False)
    assert refused.exit_code == 1
    assert f"export does not verify: {bundle} is not a readable zip archive" in refused.output
