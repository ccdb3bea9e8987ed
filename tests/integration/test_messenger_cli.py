"""The messenger's commands with numbers as people type them: national forms, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from numident.cli.main import app
from numident.demo.data import OPERATORS, write_plan


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke ``numident`` with a home, a migrated database and the demo's numbering plan loaded."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("messenger", "migrate").exit_code == 0
    loaded = invoke("messenger", "import-plan", str(write_plan(tmp_path / "plan.csv")))
    assert loaded.exit_code == 0, loaded.output
    return invoke


def test_route_reads_the_national_form_as_a_russian_number(run) -> None:  # type: ignore[no-untyped-def]
    """`route 89161234567` routes +79161234567, the same as the E.164 form."""
    national = run("messenger", "route", "89161234567", "8 (916) 555-00-01")
    international = run("messenger", "route", "+79161234567", "+79165550001")
    assert national.exit_code == 0, national.output
    assert national.output == international.output
    assert "+79161234567" in national.output
    assert "+79165550001" in national.output
    assert OPERATORS[0].inn in national.output


def test_identify_accepts_the_national_form_and_stores_e164(run) -> None:  # type: ignore[no-untyped-def]
    """The account is on +79161234567 (no operator is configured here, so it is refused)."""
    identified = run("messenger", "identify", "alice", "89161234567", "--possession-proven")
    assert identified.exit_code == 1, identified.output
    status = run("messenger", "status", "alice")
    assert "+79161234567" in status.output
    assert "OPERATOR_NOT_CONFIGURED" in status.output


@pytest.mark.parametrize("command", [("route",), ("identify", "alice")])
def test_an_invalid_national_number_is_exit_2_naming_it(run, command: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """A national form that is no valid number: exit 2 and the reason, never a traceback."""
    result = run("messenger", *command, "8916123456")
    assert result.exit_code == 2
    assert "not a valid number" in result.output
    assert "Traceback" not in result.output
