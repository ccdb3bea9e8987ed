"""``numident operator report sla`` and ``numident messenger report`` as a person types them.

The audit entries of yesterday are written as the gateway and the messenger write them
(``numident.operator.audit.write``, the account audit's columns); the commands print them as a
table, JSON or CSV, and refuse a reversed or future period and an unknown name with exit 2.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from numident.cli.main import app
from numident.client.keys import generate_key
from numident.messenger.tables import account_audit, accounts
from numident.operator import audit, organizers
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)
ALPHA = "7707083893"


def at(seconds: float, day: date = YESTERDAY) -> datetime:
    return datetime.combine(day, time(10), UTC) + timedelta(seconds=seconds)


@pytest.fixture
def engine(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[Engine]:
    """Both sides' schemas on the test's database, which the commands use too."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    engine = create_database_engine(database_url)
    upgrade(engine, "operator")
    upgrade(engine, "messenger")
    yield engine
    engine.dispose()


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def gateway_day(engine: Engine) -> None:
    """chat: two requests answered after 10 s and 30 s, one refusal of 3 items, one notice
    delivered after 4 s."""
    organizers.add_organizer(engine, "chat", "https://chat.example/notices",
                             json.dumps(generate_key().public_jwk()), at(0))
    entries = []
    for n, seconds in enumerate((10, 30)):
        request = f"req-{n}"
        entries += [audit.entry(at(n), "chat", "request_received", request_id=request),
                    audit.entry(at(n + seconds), "chat", "answered", request_id=request,
                                detail={"result": "confirmed"})]
    entries += [
        audit.entry(at(50), "chat", "limit_exceeded",
                    detail={"limit": "daily_quota", "value": 2, "items": 3, "refused": 3}),
        audit.entry(at(60), "cli", "usage_invalidated",
                    detail={"organizer": "chat", "noticeId": "n-1", "type": "contract_ended"}),
        audit.entry(at(64), "dispatcher", "notice_delivered",
                    detail={"organizer": "chat", "noticeId": "n-1", "attempts": 1}),
    ]
    with engine.begin() as conn:
        audit.write(conn, entries)


def period(*extra: str) -> tuple[str, ...]:
    return ("--from", YESTERDAY.isoformat(), "--to", YESTERDAY.isoformat(), *extra)


CHAT = {"organizer": "chat", "day": YESTERDAY.isoformat(), "requests": 2,
        "answered_in_time": 2, "late": 0, "open": 0, "refused": 3, "answer_p50": 20.0,
        "answer_p95": 29.0, "answer_p99": 29.8, "notices": 1, "delivered_in_time": 1,
        "dead_letters": 0, "delivery_p99": 4.0}


def test_sla_report_prints_json_with_every_figure(engine: Engine) -> None:
    """--format json gives one object per organizer and day, times in seconds."""
    gateway_day(engine)
    result = run("operator", "report", "sla", *period("--format", "json"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [CHAT]


def test_sla_report_prints_csv_with_a_header(engine: Engine) -> None:
    """--format csv gives the field names, then one row per organizer and day."""
    gateway_day(engine)
    result = run("operator", "report", "sla", *period("--format", "csv", "--organizer", "chat"))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows == [list(CHAT), [str(v) for v in CHAT.values()]]


def test_sla_report_prints_a_table_by_default(engine: Engine) -> None:
    """The table names the period, the organizer, the day and the figures."""
    gateway_day(engine)
    result = run("operator", "report", "sla", *period())
    assert result.exit_code == 0, result.output
    assert f"SLA from {YESTERDAY} to {YESTERDAY} (UTC)" in result.output, result.output
    line = next((row for row in result.output.splitlines() if "chat" in row), result.output)
    cells = [c.strip() for c in line.strip("│┃ ").split("│")]
    assert cells == ["chat", YESTERDAY.isoformat(), "2", "2", "0", "0", "3", "20.000",
                     "29.000", "29.800", "1", "1", "0", "4.000"]


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "2026-03-02", "--to", "2026-03-01"), "reversed"),
    (("--from", YESTERDAY.isoformat(), "--to", (YESTERDAY + timedelta(days=2)).isoformat()),
     "future"),
    (("--from", "2026-02-30", "--to", "2026-03-01"), "not a day"),
    (period("--organizer", "nobody"), "no organizer nobody"),
    (period("--format", "xml"), "xml"),
])
def test_sla_report_refuses_bad_input_with_exit_2(engine: Engine, args: tuple[str, ...],
                                                  message: str) -> None:
    """A reversed period, one ending after today, a day that does not exist, an organizer
    that is not registered and an unknown format are bad usage, explained."""
    result = run("operator", "report", "sla", *args)
    assert result.exit_code == 2
    assert message in result.output


def messenger_day(engine: Engine) -> None:
    """bob: identified 4 s after asking, blocked by a notice, identified again 100 s later."""
    with engine.begin() as conn:
        conn.execute(accounts.insert().values(
            account_id="bob", phone_number="+79161234567", state="identified",
            operator_inn=ALPHA, operator_name="Alpha", identification_code="code-bob",
            created_at=at(0), updated_at=at(0)))
        conn.execute(account_audit.insert(), [
            {"account_id": "bob", "at": at(s), "from_state": before, "to_state": after,
             "operator_inn": ALPHA, "phone_number": "+79161234567"}
            for s, before, after in [
                (0, "verifying_possession", "pending"), (4, "pending", "identified"),
                (10, "identified", "reidentification_required"),
                (100, "reidentification_required", "pending"),
                (110, "pending", "identified")]])


BOB: dict[str, Any] = {
    "operator": "Alpha", "inn": ALPHA, "day": YESTERDAY.isoformat(), "identified": 2,
    "refused": 0, "unanswered": 0, "identify_p50": 7.0, "identify_p95": 9.7, "notices": 0,
    "blocked": 1, "reidentified": 1, "reidentify_p50": 100.0, "reidentify_p95": 100.0}


def test_messenger_report_prints_json_and_csv(engine: Engine) -> None:
    """The operator is found by its name as the accounts hold it; both formats agree."""
    messenger_day(engine)
    result = run("messenger", "report", *period("--format", "json", "--operator", "Alpha"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [BOB]
    table = run("messenger", "report", *period("--format", "csv"))
    assert list(csv.DictReader(io.StringIO(table.output))) == [
        {k: str(v) for k, v in BOB.items()}]


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "2026-03-02", "--to", "2026-03-01"), "reversed"),
    (("--from", "2999-01-01", "--to", "2999-01-02"), "future"),
    (period("--operator", "Beta"), "no operator Beta"),
])
def test_messenger_report_refuses_bad_input_with_exit_2(engine: Engine, args: tuple[str, ...],
                                                        message: str) -> None:
    """A reversed or future period and an unknown operator are bad usage, explained."""
    result = run("messenger", "report", *args)
    assert result.exit_code == 2
    assert message in result.output
