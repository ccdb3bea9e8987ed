"""A real gateway process, started as the README says (``numident operator serve --host
127.0.0.1 --port P``, no ``public_url``), for third-party OAuth client libraries to use.

The gateway lives for the session; each test registers its own organizer through the admin
API with a key that the library under test made, so no test sees another's assertions.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

ADMIN_TOKEN = "interop-admin"
LINE = "+79161234567"
REDIRECT_URI = "https://organizer.example/callback"
NODE_DIR = Path(__file__).parent / "node"


@dataclass
class Gateway:
    url: str
    log: Path

    def admin(self, method: str, path: str, body: object) -> httpx2.Response:
        response = httpx2.request(method, f"{self.url}/admin/v1{path}", json=body,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)
        assert response.is_success, response.text
        return response

    def register(self, name: str, public_key: str | dict[str, Any],
                 scopes: tuple[str, ...] = ("identification",)) -> str:
        """Register organizer ``name`` with a public key (PEM text or a JWK)."""
        text = public_key if isinstance(public_key, str) else json.dumps(public_key)
        self.admin("POST", "/organizers", {
            "name": name, "noticeUrl": f"http://127.0.0.1:9/{name}/notices", "publicKey": text,
            "scopes": list(scopes), "redirectUris": [REDIRECT_URI], "replace": True})
        return name

    def identify(self, access_token: str, code: str) -> httpx2.Response:
        return httpx2.post(f"{self.url}/identification/v1/requests", timeout=30,
                          headers={"Authorization": f"Bearer {access_token}"},
                          json={"phoneNumber": LINE, "identificationCode": code})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """``numident operator serve`` on a free loopback port, with one subscriber line."""
    home = tmp_path_factory.mktemp("interop-gateway")
    env = {**os.environ, "NUMIDENT_HOME": str(home),
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": ADMIN_TOKEN}
    env.pop("NUMIDENT_OPERATOR__PUBLIC_URL", None)
    export = home / "subscribers.csv"
    export.write_text(f"phone_number,contract_id,status,activated_at\n{LINE},C-1,active,"
                      "2024-01-01\n", encoding="utf-8")
    for command in (["migrate"], ["import-subscribers", str(export)]):
        subprocess.run([sys.executable, "-m", "numident", "operator", *command], env=env,
                       check=True, capture_output=True, timeout=120)
    port = _free_port()
    log = home / "gateway.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([sys.executable, "-m", "numident", "operator", "serve",
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the gateway exited: {log.read_text(errors='replace')}")
            try:
                if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start: {log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield Gateway(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def node() -> Path:
    """The node_modules of ``tests/interop/node`` (``npm ci`` once when missing).

    Skips, saying why, only where Node.js is absent; a failing ``npm ci`` fails the tests.
    """
    executable = shutil.which("node")
    npm = shutil.which("npm")
    if executable is None or npm is None:
        pytest.skip("Node.js is not installed: the node jose and oauth4webapi clients "
                    "cannot run here")
    if not (NODE_DIR / "node_modules").is_dir():
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, f"npm ci failed: {result.stderr}"
    return Path(executable)


def run_node(node: Path, script: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run ``tests/interop/node/<script>`` with JSON arguments; its stdout is JSON."""
    result = subprocess.run([str(node), script, json.dumps(arguments)], cwd=NODE_DIR,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{script} failed: {result.stderr}{result.stdout}"
    return dict(json.loads(result.stdout))
