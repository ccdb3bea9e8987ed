"""The operator's commands as a person types them: messages, exit codes, nothing half-done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from numident.cli.main import app
from numident.client.keys import generate_key, save_public_key
from numident.operator.tables import ciba_clients, network_sessions, organizers

HEADER = "phone_number,contract_id,status,activated_at\n"


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke ``numident`` with a home and a migrated database of this test's own."""
    monkeypatch.setenv("NUMIDENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NUMIDENT_DATABASE_URL", database_url)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    assert invoke("operator", "migrate").exit_code == 0
    return invoke


def test_import_reports_counts_and_is_idempotent(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A good export loads; loading it again changes nothing."""
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "+79161234567,C-1,active,2024-01-01\n", encoding="utf-8")
    first = run("operator", "import-subscribers", str(export))
    second = run("operator", "import-subscribers", str(export))
    assert first.exit_code == 0
    assert "1 rows: 1 new, 0 changed, 0 unchanged, 0 rejected" in first.output
    assert "1 rows: 0 new, 0 changed, 1 unchanged, 0 rejected" in second.output


def test_bad_export_exits_2_naming_line_and_field(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A bad row is reported with its line and field, and nothing is loaded."""
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "+79161234567,C-1,active,2024-01-01\n"
                      "+7916123456X,C-2,active,2024-01-01\n", encoding="utf-8")
    result = run("operator", "import-subscribers", str(export))
    assert result.exit_code == 2
    assert "line 3, field 'phone_number'" in result.output
    assert "nothing was changed" in result.output
    event = run("operator", "event", "contract_terminated", "+79161234567")
    assert event.exit_code == 1
    assert "SUBSCRIBER_NOT_FOUND" in event.output


def test_partial_import_needs_a_reject_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--partial without --reject-file is bad usage."""
    export = tmp_path / "export.csv"
    export.write_text(HEADER, encoding="utf-8")
    result = run("operator", "import-subscribers", str(export), "--partial")
    assert result.exit_code == 2
    assert "--reject-file" in result.output


def test_event_and_organizer_commands(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Registering an organizer and recording events work, and bad input exits 2."""
    key = generate_key()
    save_public_key(key.public(), tmp_path / "chat.jwk")
    added = run("operator", "add-organizer", "chat", "--notice-url", "https://chat.example/n",
                "--public-key", str(tmp_path / "chat.jwk"))
    again = run("operator", "add-organizer", "chat", "--notice-url", "https://chat.example/n",
                "--public-key", str(tmp_path / "chat.jwk"))
    bad_url = run("operator", "add-organizer", "other", "--notice-url", "ftp://x",
                  "--public-key", str(tmp_path / "chat.jwk"))
    assert added.exit_code == 0
    assert (again.exit_code, "ORGANIZER_EXISTS" in again.output) == (1, True)
    assert bad_url.exit_code == 2
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "+79161234567,C-1,active,2024-01-01\n", encoding="utf-8")
    run("operator", "import-subscribers", str(export))
    recorded = run("operator", "event", "sim_swapped", "+7 916 123 45 67", "--event-id", "e-1")
    repeated = run("operator", "event", "sim_swapped", "+79161234567", "--event-id", "e-1")
    bad_number = run("operator", "event", "sim_swapped", "12345")
    assert recorded.exit_code == 0
    assert "sim_swapped recorded for +79161234567" in recorded.output
    assert "already recorded" in repeated.output
    assert bad_number.exit_code == 2
    listing = run("operator", "notices")
    assert listing.exit_code == 0
    assert "pending 0" in listing.output


def test_public_key_is_a_jwk(run) -> None:  # type: ignore[no-untyped-def]
    """The gateway's public key prints as a JWK that organizers can register."""
    result = run("operator", "public-key")
    assert json.loads(result.output)["kty"] == "OKP"


def test_scopes_and_network_sessions_from_the_command_line(run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          database_url: str) -> None:
    """Staff register an organizer's scopes and redirect URI, and a device's session."""
    save_public_key(generate_key().public(), tmp_path / "bank.jwk")
    added = run("operator", "add-organizer", "bank", "--notice-url", "https://bank.example/n",
                "--public-key", str(tmp_path / "bank.jwk"), "--scope", "sim-swap:check",
                "--scope", "kyc-match:match", "--redirect-uri", "https://bank.example/cb")
    bad_scope = run("operator", "add-organizer", "shop", "--notice-url", "https://shop.example",
                    "--public-key", str(tmp_path / "bank.jwk"), "--scope", "bad scope")
    assert added.exit_code == 0
    assert "scopes: kyc-match:match sim-swap:check" in added.output
    assert bad_scope.exit_code == 2
    assert "scopes must be OAuth2 scope tokens, not ['bad scope']" in bad_scope.output
    opened = run("operator", "network-session", "10.1.2.3", "+7 916 123-45-67",
                 "--authentication", "sim")
    assert opened.exit_code == 0
    assert opened.output.strip() == "session 10.1.2.3 is +79161234567 (sim)"
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(network_sessions)).one()
            scopes = conn.execute(select(organizers.c.scopes, organizers.c.redirect_uris)).one()
    finally:
        engine.dispose()
    assert (row.session_id, row.phone_number, row.authentication) == (
        "10.1.2.3", "+79161234567", "sim")
    assert tuple(scopes) == ("kyc-match:match sim-swap:check", "https://bank.example/cb")
    assert run("operator", "network-session", "10.1.2.3", "--end").exit_code == 0
    missing = run("operator", "network-session", "10.1.2.3", "--end")
    assert missing.exit_code == 1
    assert "SESSION_NOT_FOUND" in missing.output


def test_ciba_delivery_modes_from_the_command_line(run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   database_url: str) -> None:
    """Staff put an organizer in ping mode and back to poll; an unknown organizer is exit 1,
    an endpoint that cannot be pinged exit 2 with the reason, and nothing is changed."""
    save_public_key(generate_key().public(), tmp_path / "bank.jwk")
    run("operator", "add-organizer", "bank", "--notice-url", "https://bank.example/n",
        "--public-key", str(tmp_path / "bank.jwk"))
    ping = run("operator", "ciba-client", "bank", "--ping", "https://bank.example/ciba")
    assert (ping.exit_code, ping.output.strip()) == (
        0, "bank learns CIBA decisions by ping to https://bank.example/ciba")
    plain = run("operator", "ciba-client", "bank", "--ping", "http://bank.example/ciba")
    assert plain.exit_code == 2
    assert "https notification endpoint" in plain.output
    assert run("operator", "ciba-client", "nobody").exit_code == 1
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(ciba_clients)).one()
        assert tuple(row) == ("bank", "ping", "https://bank.example/ciba")
        poll = run("operator", "ciba-client", "bank")
        assert (poll.exit_code, poll.output.strip()) == (0, "bank learns CIBA decisions by polling")
        with engine.connect() as conn:
            assert tuple(conn.execute(select(ciba_clients)).one()) == ("bank", "poll", None)
    finally:
        engine.dispose()


def test_organizer_limits_are_set_at_registration_and_changed_later(  # type: ignore[no-untyped-def]
        run, tmp_path: Path, database_url: str) -> None:
    """add-organizer takes --rate-limit and --daily-quota; set-limits changes one and keeps the
    other, 'default' clears one; a bad value exits 2 naming the option and changes nothing."""
    save_public_key(generate_key().public(), tmp_path / "chat.jwk")
    added = run("operator", "add-organizer", "chat", "--notice-url", "https://chat.example/n",
                "--public-key", str(tmp_path / "chat.jwk"), "--rate-limit", "50",
                "--daily-quota", "10000")
    assert added.exit_code == 0
    assert "rate limit 50/s, daily quota 10000/day" in added.output
    changed = run("operator", "set-limits", "chat", "--daily-quota", "500")
    assert (changed.exit_code, changed.output.strip()) == (
        0, "organizer chat: rate limit 50/s, daily quota 500/day")
    cleared = run("operator", "set-limits", "chat", "--rate-limit", "default")
    assert cleared.output.strip() == "organizer chat: rate limit default, daily quota 500/day"
    bad = run("operator", "set-limits", "chat", "--rate-limit", "fast", "--daily-quota", "7")
    assert bad.exit_code == 2
    assert "--rate-limit must be a whole number of at least 1 or 'default', not 'fast'" \
        in bad.output
    zero = run("operator", "add-organizer", "shop", "--notice-url", "https://shop.example/n",
               "--public-key", str(tmp_path / "chat.jwk"), "--daily-quota", "0")
    assert zero.exit_code == 2
    missing = run("operator", "set-limits", "nobody", "--rate-limit", "5")
    assert (missing.exit_code, "ORGANIZER_NOT_FOUND" in missing.output) == (1, True)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(organizers.c.name, organizers.c.rate_limit,
                                       organizers.c.daily_quota)).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("chat", None, 500)]


def test_events_and_sessions_take_the_national_form_of_a_number(  # type: ignore[no-untyped-def]
        run, tmp_path: Path) -> None:
    """`event ... 89161234567` is the event of +79161234567, as staff type numbers; a
    number of another country stays exit 2."""
    export = tmp_path / "export.csv"
    export.write_text(HEADER + "+79161234567,C-1,active,2024-01-01\n", encoding="utf-8")
    run("operator", "import-subscribers", str(export))
    recorded = run("operator", "event", "sim_swapped", "8 916 123-45-67")
    session = run("operator", "network-session", "s-1", "89161234567")
    foreign = run("operator", "event", "sim_swapped", "+12025550123")
    assert recorded.exit_code == 0, recorded.output
    assert "sim_swapped recorded for +79161234567" in recorded.output
    assert session.exit_code == 0, session.output
    assert "session s-1 is +79161234567" in session.output
    assert foreign.exit_code == 2


def test_notices_refuse_an_unknown_status(run) -> None:  # type: ignore[no-untyped-def]
    """`notices --status foo` is bad usage (exit 2 naming the statuses), not an empty list."""
    listed = run("operator", "notices", "--status", "foo")
    assert listed.exit_code == 2
    assert "pending" in listed.output
    assert run("operator", "notices", "--status", "dead").exit_code == 0
