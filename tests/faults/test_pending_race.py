"""Fault scenario: a notice that reaches the messenger while its account is pending.

Real processes on loopback: an operator gateway in deferred mode and a messenger service that
reaches the gateway's API through a gate (``loopback_gate``) which holds the messenger's polls.
The gateway answers ``confirmed``; the contract then ends and the gateway's signed notice is
delivered to the messenger; only then does the gate let the poll collect the answer. SPEC rule 7:
that answer must not make the account ``identified``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx2
from loopback_gate import gate
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from numident.cli.main import app
from numident.demo.data import OPERATORS, write_plan
from numident.messenger.sms import last_code_in_file
from numident.operator.tables import identification_requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_servers import free_port, start_server, wait_for

ALFA_INN = OPERATORS[0].inn
NUMBER = "+79165550001"
ADMIN = {"Authorization": "Bearer staff-secret"}


def cli(args: list[str], env: dict[str, str]) -> str:
    """Run a setup command in this process (the servers alone are separate processes)."""
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _polls(method: str, path: str) -> bool:
    return method == "GET" and path.startswith("/identification/v1/requests/")


def _home_urls(database_url: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, str], str]:
    """Each side's environment and the gateway's database URL (SQLite: a file per side)."""
    gateway_env = {"NUMIDENT_HOME": str(tmp_path / "gateway")}
    messenger_env = {"NUMIDENT_HOME": str(tmp_path / "messenger")}
    if database_url.startswith("sqlite"):
        return gateway_env, messenger_env, f"sqlite:///{tmp_path / 'gateway' / 'operator.db'}"
    for env in (gateway_env, messenger_env):
        env["NUMIDENT_DATABASE_URL"] = database_url
    return gateway_env, messenger_env, database_url


def test_notice_while_pending_keeps_the_account_from_being_identified(
        database_url: str, tmp_path: Path) -> None:
    """Confirmed, then contract_terminated delivered before the answer is collected: the
    account is blocked when the notice arrives and ends refused after asking again."""
    gateway_port, messenger_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    gateway_env, messenger_env, gateway_db = _home_urls(database_url, tmp_path)
    gateway_env.update({"NUMIDENT_OPERATOR__PUBLIC_URL": gateway_url,
                        "NUMIDENT_OPERATOR__ADMIN_TOKEN": "staff-secret",
                        "NUMIDENT_OPERATOR__DEFERRED": "true"})
    (tmp_path / "gateway.jwk").write_text(cli(["operator", "public-key"], gateway_env))
    (tmp_path / "messenger.jwk").write_text(
        cli(["messenger", "public-key"], messenger_env))
    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n"
                      f"{NUMBER},A-1,active,2024-01-01\n", encoding="utf-8")
    cli(["operator", "migrate"], gateway_env)
    cli(["operator", "import-subscribers", str(export)], gateway_env)
    cli(["operator", "add-organizer", "chat", "--notice-url",
         f"{messenger_url}/messenger/v1/notices", "--public-key",
         str(tmp_path / "messenger.jwk")], gateway_env)
    gateway = start_server("operator", gateway_env, tmp_path / "gateway.log", gateway_port)
    gateway_engine = create_engine(gateway_db)
    sms = tmp_path / "sms.jsonl"
    with gate(gateway_url, _polls) as proxy:
        config = tmp_path / "messenger.toml"
        config.write_text(f"""
[messenger]
organizer = "chat"
api_token = "backend-secret"
public_url = "{messenger_url}"
poll_initial_seconds = 0.2
poll_max_seconds = 1
request_timeout_seconds = 90
sms = {{ kind = "file", path = "{sms}" }}

[[messenger.operators]]
inn = "{ALFA_INN}"
gateway_url = "{proxy.url}"
token_url = "{gateway_url}/oauth2/token"
notice_public_key = "{tmp_path / 'gateway.jwk'}"
""", encoding="utf-8")
        cli(["messenger", "migrate", "--config", str(config)], messenger_env)
        cli(["messenger", "import-plan", str(write_plan(tmp_path / "plan.csv")),
             "--config", str(config)], messenger_env)
        messenger = start_server("messenger", messenger_env, tmp_path / "messenger.log",
                                 messenger_port, config=config)
        backend = httpx2.Client(base_url=messenger.url, timeout=30,
                               headers={"Authorization": "Bearer backend-secret"})
        try:
            def account() -> dict[str, object]:
                return backend.get("/messenger/v1/accounts/alice").json()  # type: ignore[no-any-return]

            def answered() -> bool:
                with gateway_engine.connect() as conn:
                    return list(conn.execute(select(identification_requests.c.result))
                                .scalars()) == ["confirmed"]

            def notice_delivered() -> bool:
                counts = httpx2.get(f"{gateway.url}/admin/v1/notices", headers=ADMIN).json()
                return bool(counts["counts"].get("delivered") == 1)

            assert backend.put("/messenger/v1/accounts/alice/phone-number",
                               json={"phoneNumber": NUMBER}).status_code == 202
            code = last_code_in_file(sms, NUMBER)
            assert code is not None
            assert backend.post("/messenger/v1/accounts/alice/phone-number/confirm",
                                json={"code": code}).status_code == 202
            # The gateway answers; the messenger's poll waits at the gate meanwhile.
            assert wait_for(answered, timeout=60)
            assert wait_for(lambda: proxy.held >= 1, timeout=60)
            event = httpx2.post(f"{gateway.url}/admin/v1/events", headers=ADMIN,
                               json={"type": "contract_terminated", "phoneNumber": NUMBER})
            assert event.json()["notices"] == 1
            assert wait_for(notice_delivered, timeout=60)
            blocked = account()
            assert (blocked["state"], blocked["canSend"]) == ("reidentification_required",
                                                              False)

            proxy.open()
            assert wait_for(lambda: account()["state"] in {"identified", "refused",
                                                            "unanswered"}, timeout=60)
            final = account()
            assert (final["state"], final["canSend"], final["reason"]) == (
                "refused", False, "NOT_FOUND")
            with gateway_engine.connect() as conn:
                results = sorted(conn.execute(select(identification_requests.c.result))
                                 .scalars())
            assert results == ["confirmed", "not_found"]
        finally:
            backend.close()
            messenger.stop()
            gateway.stop()
            gateway_engine.dispose()
