"""The CLI's exit statuses as a shell sees them: 0 done, 1 failed, 2 bad input, usage or config.

Only ``migrate`` and the servers change a schema; every other command refuses a database that
is not at the newest one, naming the command that brings it there.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from e2e_servers import cli, free_port

from numident.operator.tables import outbox
from numident.outbox.store import OutboxMessage, SqlOutbox
from numident.storage.database import create_database_engine
from numident.storage.migrate import Side, newest


@pytest.mark.parametrize(("side", "command"), [("operator", ["notices"]),
                                                ("messenger", ["status", "alice"])])
def test_a_command_on_an_unmigrated_database_exits_2_until_migrate_is_run(
        side: Side, command: list[str], tmp_path: Path) -> None:
    env = {"NUMIDENT_HOME": str(tmp_path / "home")}
    refused = cli([side, *command], env, check=False, migrate=False)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: the {side}'s database schema is empty"), \
        refused.stderr
    assert f"run: numident {side} migrate" in refused.stderr
    assert "Traceback" not in refused.stderr

    first = cli([side, "migrate"], env)
    assert f"{side} schema migrated: empty → {newest(side)}" in first.stdout
    again = cli([side, "migrate"], env)
    assert f"{side} schema is up to date: {newest(side)}" in again.stdout

    after = cli([side, *command], env, check=False)
    assert after.returncode == (0 if side == "operator" else 1), after.stderr  # no alice yet
    assert "migrate" not in after.stderr


def test_notices_as_json_hold_the_table_fields_with_rfc3339_times(tmp_path: Path) -> None:
    env = {"NUMIDENT_HOME": str(tmp_path / "home")}
    cli(["operator", "migrate"], env)
    assert json.loads(cli(["operator", "notices", "--json"], env).stdout) == []
    engine = create_database_engine(f"sqlite:///{tmp_path / 'home' / 'operator.db'}")
    try:
        with engine.begin() as conn:
            SqlOutbox(engine, outbox).add(conn, OutboxMessage(
                id="n-1", destination="https://chat.example/notices", payload=b"{}",
                created_at=datetime(2026, 11, 30, 9, 15, 7, 250000, tzinfo=UTC),
                owner="chat"))
    finally:
        engine.dispose()
    listed = json.loads(cli(["operator", "notices", "--json", "--organizer", "chat"],
                            env).stdout)
    assert listed == [{"id": "n-1", "organizer": "chat", "status": "pending", "attempts": 0,
                       "created": "2026-11-30T09:15:07.250000Z", "last_error": None}]


def test_a_bad_config_file_or_value_exits_2_naming_where(tmp_path: Path) -> None:
    env = {"NUMIDENT_HOME": str(tmp_path / "home")}
    broken = tmp_path / "broken.toml"
    broken.write_text('[operator]\npublic_url = "https://gw.example"\nlog_level = \n',
                      encoding="utf-8")
    bad_file = cli(["operator", "notices", "--config", str(broken)], env, check=False,
                   migrate=False)
    assert bad_file.returncode == 2, bad_file.stderr
    assert bad_file.stderr.startswith(f"error: config file {broken}"), bad_file.stderr
    assert "line 3" in bad_file.stderr

    bad_value = cli(["messenger", "status", "alice"],
                    {**env, "NUMIDENT_MESSENGER__POLL_MAX_SECONDS": "soon"}, check=False,
                    migrate=False)
    assert bad_value.returncode == 2, bad_value.stderr
    assert bad_value.stderr.startswith("error: invalid configuration: "), bad_value.stderr
    assert "messenger.poll_max_seconds" in bad_value.stderr
    assert "Traceback" not in bad_value.stderr


@pytest.mark.parametrize("side", ["operator", "messenger"])
def test_serve_on_a_busy_port_exits_1_saying_so(side: str, tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = cli([side, "serve", "--host", "127.0.0.1", "--port", str(port)],
                     {"NUMIDENT_HOME": str(tmp_path / "home")}, check=False)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: port {port} on 127.0.0.1 is already in use (PORT_IN_USE)"]

