"""``numident.client`` works with the base install alone: no server dependency importable.

Each test runs a fresh Python in which fastapi, starlette, uvicorn, sqlalchemy, alembic,
psycopg, nats, numpy, rapidfuzz, prometheus_client, typer, rich (and pydantic, phonenumbers,
structlog, jinja2, httpx) cannot be imported, against a real gateway process on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from interop_gateway import LINE, Gateway

from numident.client.keys import generate_key, load_private_key, save_private_key
from numident.client.signatures import NoticeSigner
from numident.core.notices import NoticeType
from numident.wire.notice import Notice, to_cloudevent

BACKEND = Path(__file__).parent / "organizer_backend.py"
BLOCKED = "import organizer_backend as b; b.block_server_modules(); "


def run_isolated(code_or_script: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *code_or_script], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)


def test_organizer_gets_a_token_identifies_and_verifies_a_notice_without_server_deps(
        gateway: Gateway, tmp_path: Path) -> None:
    """With only the base dependencies importable, the client gets a token, identifies the
    line (single and batch), withdraws the usage once, and verifies and parses a notice signed
    by the gateway's own key with the gateway's signer."""
    key = generate_key()
    key_path = tmp_path / "organizer.pem"
    save_private_key(key, key_path)
    client_id = gateway.register("slim-client", key.public_pem().decode())
    gateway_key = load_private_key(gateway.log.parent / "operator" / "signing-key.pem")
    notice_url = "http://127.0.0.1:9/slim-client/notices"
    body = to_cloudevent(Notice(str(uuid.uuid4()), NoticeType.CONTRACT_TERMINATED, "slim-1",
                                LINE, datetime.now(UTC)), "operator")
    headers = {"Content-Type": "application/cloudevents+json"}
    headers |= NoticeSigner(gateway_key).sign("POST", notice_url, body, headers)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({
        "url": gateway.url, "client_id": client_id, "key_path": str(key_path), "line": LINE,
        "notice": {"url": notice_url, "headers": headers, "body": body.decode()}}))

    result = run_isolated([str(BACKEND), str(settings)], tmp_path)

    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["single"] == "confirmed"
    assert seen["batch"] == ["confirmed", "not_found"]
    assert seen["withdrawn"] == [True, False]
    assert seen["notice"] == {"keyid": gateway_key.kid, "type": "contract_terminated",
                              "identification_code": "slim-1"}
    assert seen["server_modules_loaded"] == []


def test_the_blocker_really_hides_the_server_dependencies() -> None:
    """The child's import hook makes a server module fail as a missing one would."""
    result = run_isolated(["-c", BLOCKED + "import sqlalchemy"], BACKEND.parent)

    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'sqlalchemy'" in result.stderr


def test_the_cli_without_the_server_extra_names_the_install_command() -> None:
    """``numident`` without its server dependencies exits 1 with one line naming
    ``pip install 'numident[server]'``, not a traceback."""
    result = run_isolated(["-c", BLOCKED + "from numident.cli.entry import main; main()"],
                          BACKEND.parent)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'numident[server]'" in lines[0]
    assert "Traceback" not in result.stderr
