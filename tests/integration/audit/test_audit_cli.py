"""``audit verify`` as a person types it, on both sides: what it verified, and exit 1 with
the entry named when the chain is broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from audit_fixtures import drop_triggers, write_entries
from sqlalchemy import text
from typer.testing import CliRunner

from numident.audit.log import Side
from numident.cli.main import app
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
    write_entries(side, engine, 5)
    runner = CliRunner()
    intact = runner.invoke(app, [side, "audit", "verify"], catch_exceptions=False)
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact: entries 1..5 verified, 0 checkpoints" in intact.output
    assert "entries 1..5 are chained but not yet signed by a checkpoint" in intact.output
    table = "audit" if side == "operator" else "account_audit"
    with engine.begin() as conn:
        drop_triggers(conn, table)
        conn.execute(text(f"DELETE FROM {table} WHERE seq = 2"))
    broken = runner.invoke(app, [side, "audit", "verify"], catch_exceptions=False)
    assert broken.exit_code == 1
    assert "audit chain broken at entry 2: entry 2 is missing (the next is 3)" in broken.output
    assert "entries 1..1 verified before it; no checkpoint was verified" in broken.output
    engine.dispose()
