"""Hostile and junk subscriber exports: refused naming line and field, nothing stored changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from numident.cli.main import app
from numident.operator.tables import outbox, subscriber_history, subscribers

HEADER = "phone_number,contract_id,status,activated_at\n"
GOOD = HEADER + "+79161234567,C-1,active,2024-01-01\n+79031112233,C-2,active,2023-05-01\n"


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke ``numident`` with a home and a migrated database of its own, the registry loaded."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("operator", "migrate").exit_code == 0
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    assert invoke("operator", "import-subscribers", str(good)).exit_code == 0
    return invoke


def stored(database_url: str) -> tuple[list[tuple[str, str, str]], int, int]:
    """The registry rows, the history count and the outbox count."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = [(r.phone_number, r.contract_id, r.status) for r in conn.execute(
                select(subscribers).order_by(subscribers.c.phone_number))]
            history = conn.execute(select(func.count()).select_from(subscriber_history))
            notices = conn.execute(select(func.count()).select_from(outbox))
            return rows, int(history.scalar_one()), int(notices.scalar_one())
    finally:
        engine.dispose()


BEFORE = ([("+79031112233", "C-2", "active"), ("+79161234567", "C-1", "active")], 2, 0)

CASES = {
    "windows-1251 text": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + "+79161234568,Договор-7,active,2024-01-01\n").encode("cp1251"),
        "line 3, field 'contract_id'", "not UTF-8"),
    "utf-16 with a byte order mark": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n").encode("utf-16"),
        "line 1, field '(file)'", "UTF-16"),
    "binary content": (
        bytes(range(256)) * 64, "line 1, field '(file)'", "binary"),
    "a field over 128 KB": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + '+79161234568,"' + "x" * 140_000 + '",active,2024-01-01\n').encode(),
        "line 3, field '(row)'", "longer than"),
    "a quoted field over 128 KB across lines": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + '+79161234568,"' + "\n".join(["y" * 50_000] * 3) + '",active,2024-01-01\n').encode(),
        "line 3, field '(row)'", "field larger than field limit"),
    "NUL inside contract_id": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + '+79161234568,"C\x002",active,2024-01-01\n').encode(),
        "line 3, field 'contract_id'", "control character"),
    "a line break inside contract_id": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + '+79161234568,"C-\n2",active,2024-01-01\n').encode(),
        "line 3, field 'contract_id'", "control character"),
    "a Kazakh number in a Russian registry": (
        (HEADER + "+79161234567,C-1,terminated,2024-01-01\n"
         + "+77011234567,C-3,active,2024-01-01\n").encode(),
        "line 3, field 'phone_number'", "region KZ"),
    "a German number in a Russian registry": (
        (HEADER + "+4915112345678,C-3,active,2024-01-01\n").encode(),
        "line 2, field 'phone_number'", "region DE"),
    "an activation in 2099": (
        (HEADER + "+79161234567,C-1,terminated,2099-01-01\n").encode(),
        "line 2, field 'activated_at'", "in the future"),
    "an activation in 1800": (
        (HEADER + "+79161234567,C-1,terminated,1800-01-01\n").encode(),
        "line 2, field 'activated_at'", "before 1980"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_export_exits_2_naming_line_and_field_and_changes_nothing(
        run, tmp_path: Path, database_url: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Each hostile file exits 2 with its line, field and reason, never a traceback, and the
    registry, its history and the outbox stay exactly as they were."""
    content, where, reason = CASES[name]
    export = tmp_path / "hostile.csv"
    export.write_bytes(content)
    result = run("operator", "import-subscribers", str(export))
    assert result.exit_code == 2, result.output
    assert where in result.output
    assert reason in result.output
    assert "Traceback" not in result.output
    assert stored(database_url) == BEFORE


def test_one_bad_byte_in_a_large_export_names_its_line(run, tmp_path: Path,
                                                         database_url: str) -> None:  # type: ignore[no-untyped-def]
    """An 8 MB export with one byte that is not UTF-8 is refused naming that line alone."""
    lines = [f"+7916{n:07d},C-{n},active,2024-01-01\n" for n in range(230_000)]
    data = bytearray((HEADER + "".join(lines)).encode())
    assert len(data) > 8 << 20
    bad_line = 123_457
    offset = len(HEADER.encode()) + sum(len(x) for x in lines[:bad_line - 2]) + 20
    data[offset] = 0xFF
    export = tmp_path / "large.csv"
    export.write_bytes(bytes(data))
    result = run("operator", "import-subscribers", str(export))
    assert result.exit_code == 2, result.output
    assert f"line {bad_line}, field 'contract_id'" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("  line ")] == [
        f"  line {bad_line}, field 'contract_id': is not UTF-8 (byte 0xFF at column 21); "
        "export the file as UTF-8"]
    assert stored(database_url) == BEFORE
