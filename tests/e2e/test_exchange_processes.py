"""The whole exchange with the gateway and the messenger service as separate processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
from e2e_servers import cli, free_port, start_server, wait_for

from numident.demo.data import write_plan
from numident.messenger.sms import last_code_in_file

ALFA_INN = "7700000016"


def test_identification_and_notice_between_two_server_processes(tmp_path: Path) -> None:
    """A user is identified through a real gateway, and its notice blocks the account."""
    gateway_port, messenger_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    gateway_env = {"NUMIDENT_HOME": str(tmp_path / "gateway"),
                   "NUMIDENT_OPERATOR__PUBLIC_URL": gateway_url,
                   "NUMIDENT_OPERATOR__ADMIN_TOKEN": "staff-secret"}
    messenger_env = {"NUMIDENT_HOME": str(tmp_path / "messenger")}

    # Each side gives the other its public key, as two organisations would.
    (tmp_path / "gateway.jwk").write_text(cli(["operator", "public-key"], gateway_env).stdout)
    (tmp_path / "messenger.jwk").write_text(
        cli(["messenger", "public-key"], messenger_env).stdout)
    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n"
                      "+79165550001,A-1,active,2024-01-01\n", encoding="utf-8")
    cli(["operator", "import-subscribers", str(export)], gateway_env)
    cli(["operator", "add-organizer", "chat", "--notice-url",
         f"{messenger_url}/messenger/v1/notices", "--public-key",
         str(tmp_path / "messenger.jwk")], gateway_env)
    sms = tmp_path / "sms.jsonl"
    config = tmp_path / "messenger.toml"
    config.write_text(f"""
[messenger]
organizer = "chat"
api_token = "backend-secret"
public_url = "{messenger_url}"
poll_initial_seconds = 0.2
sms = {{ kind = "file", path = "{sms}" }}

[[messenger.operators]]
inn = "{ALFA_INN}"
name = "Alfa"
gateway_url = "{gateway_url}"
notice_public_key = "{tmp_path / 'gateway.jwk'}"
""", encoding="utf-8")
    cli(["messenger", "import-plan", str(write_plan(tmp_path / "plan.csv")),
         "--config", str(config)], messenger_env)

    gateway = start_server("operator", gateway_env, tmp_path / "gateway.log", gateway_port)
    messenger = start_server("messenger", messenger_env, tmp_path / "messenger.log",
                             messenger_port, config=config)
    backend = httpx2.Client(base_url=messenger.url,
                           headers={"Authorization": "Bearer backend-secret"})
    try:
        started = backend.put("/messenger/v1/accounts/alice/phone-number",
                              json={"phoneNumber": "+79165550001"})
        assert started.status_code == 202
        assert started.json()["state"] == "verifying_possession"
        code = last_code_in_file(sms, "+79165550001")
        assert code is not None
        assert backend.post("/messenger/v1/accounts/alice/phone-number/confirm",
                            json={"code": code}).status_code == 202

        def state() -> str:
            return str(backend.get("/messenger/v1/accounts/alice").json()["state"])

        assert wait_for(lambda: state() == "identified")
        account = backend.get("/messenger/v1/accounts/alice").json()
        assert (account["operator"], account["canSend"]) == (ALFA_INN, True)

        event = httpx2.post(f"{gateway.url}/admin/v1/events",
                           headers={"Authorization": "Bearer staff-secret"},
                           json={"type": "contract_terminated", "phoneNumber": "+79165550001"})
        assert event.json()["notices"] == 1
        assert wait_for(lambda: state() == "reidentification_required")
        assert backend.get("/messenger/v1/accounts/alice").json()["canSend"] is False
    finally:
        backend.close()
        messenger.stop()
        gateway.stop()


def test_demo_runs_the_whole_exchange_and_exits_0() -> None:
    """`numident demo` walks through every case, a back-end's CIBA tokens (legitimate interest
    and consent on the page) included, and every outcome is as expected."""
    started = time.monotonic()
    result = cli(["demo"], {}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every outcome is as expected" in result.stdout
    assert "approved at once: legitimate interest" in result.stdout
    assert "the subscriber approves" in result.stdout
    assert time.monotonic() - started < 60


def test_demo_keeps_each_servers_store_under_numident_home(tmp_path: Path) -> None:
    """With NUMIDENT_HOME set the demo runs, each server with its own database under
    <home>/demo, which a new run starts afresh; no traceback."""
    home = tmp_path / "home"
    (home / "demo" / "alfa").mkdir(parents=True)
    (home / "demo" / "alfa" / "left-by-the-last-run").write_text("x")
    result = cli(["demo"], {"NUMIDENT_HOME": str(home)}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every outcome is as expected" in result.stdout
    assert "Traceback" not in result.stderr
    assert not (home / "demo" / "alfa" / "left-by-the-last-run").exists()
    assert sorted(p.relative_to(home).as_posix() for p in home.glob("demo/*/*.db")) == [
        "demo/alfa/operator.db", "demo/beta/operator.db", "demo/gamma/operator.db",
        "demo/messenger/messenger.db"]
