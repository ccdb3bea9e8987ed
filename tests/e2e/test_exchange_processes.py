"""The whole exchange with the gateway and the messenger service as separate processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
from e2e_servers import ALFA_INN, cli, two_sides, wait_for

from numident.messenger.sms import last_code_in_file


def test_identification_and_notice_between_two_server_processes(tmp_path: Path) -> None:
    """A user is identified through a real gateway, and its notice blocks the account."""
    with two_sides(tmp_path, "phone_number,contract_id,status,activated_at\n"
                   "+79165550001,A-1,active,2024-01-01\n") as sides:
        backend = sides.backend
        started = backend.put("/messenger/v1/accounts/alice/phone-number",
                              json={"phoneNumber": "+79165550001"})
        assert started.status_code == 202
        assert started.json()["state"] == "verifying_possession"
        code = last_code_in_file(sides.sms, "+79165550001")
        assert code is not None
        assert backend.post("/messenger/v1/accounts/alice/phone-number/confirm",
                            json={"code": code}).status_code == 202

        def state() -> str:
            return str(backend.get("/messenger/v1/accounts/alice").json()["state"])

        assert wait_for(lambda: state() == "identified")
        account = backend.get("/messenger/v1/accounts/alice").json()
        assert (account["operator"], account["canSend"]) == (ALFA_INN, True)

        event = httpx2.post(f"{sides.gateway.url}/admin/v1/events",
                           headers={"Authorization": "Bearer staff-secret"},
                           json={"type": "contract_terminated", "phoneNumber": "+79165550001"})
        assert event.json()["notices"] == 1
        assert wait_for(lambda: state() == "reidentification_required")
        assert backend.get("/messenger/v1/accounts/alice").json()["canSend"] is False


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
