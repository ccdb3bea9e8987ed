"""Real processes on loopback for end-to-end tests: servers started with the CLI, a receiver."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from numident.client.keys import PrivateKey

NUMIDENT = [sys.executable, "-m", "numident"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_SCHEMA_FREE = {"serve", "migrate", "public-key", "openapi"}
"""The side commands that run without a migrated database (``serve`` migrates it itself)."""
_MIGRATED: set[tuple[str, ...]] = set()


def migrated(side: str, env: dict[str, str], config: str | Path | None = None, *,
             command: list[str] = NUMIDENT) -> None:
    """``numident SIDE migrate`` for this home, database and config file, once: every other
    command refuses a database whose schema is not the newest."""
    key = (side, env.get("NUMIDENT_HOME", ""), env.get("NUMIDENT_DATABASE_URL", ""),
           str(config or ""))
    if key in _MIGRATED:
        return
    result = subprocess.run([*command, side, "migrate",
                             *(["--config", str(config)] if config else [])],
                            env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise AssertionError(f"numident {side} migrate failed: {result.stderr}")
    _MIGRATED.add(key)


def cli(args: list[str], env: dict[str, str], *, check: bool = True,
        command: list[str] = NUMIDENT, migrate: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``numident ARGS``; unless ``migrate=False``, the side's database is migrated first
    when the command needs it."""
    if migrate and len(args) > 1 and args[0] in ("operator", "messenger") \
            and args[1] not in _SCHEMA_FREE:
        config = args[args.index("--config") + 1] if "--config" in args else None
        migrated(args[0], env, config, command=command)
    result = subprocess.run([*command, *args], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"numident {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(side: str, env: dict[str, str], log: Path, port: int | None = None,
                 config: Path | None = None, wait_seconds: float = 60,
                 command: list[str] = NUMIDENT) -> Server:
    """Start ``numident SIDE serve`` (through ``command``) and wait until its /healthz
    answers."""
    port = port or free_port()
    options = ["--config", str(config)] if config else []
    with log.open("ab") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen([*command, side, "serve", "--host", "127.0.0.1",
                                    "--port", str(port), *options], env={**os.environ, **env},
                                   stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{side} server exited: {log.read_text(errors='replace')}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(process, url, log)
        except httpx2.TransportError:
            time.sleep(0.1)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError(f"{side} server did not start: {log.read_text(errors='replace')}")


@dataclass
class Receiver:
    """An organizer's notice endpoint: records every POST, optionally answering slowly, and
    answers ``status`` (a 400 makes the gateway's notice a dead letter at once)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> set[str]:
        with self.lock:
            return {json.loads(body)["id"] for _, body in self.received}


@contextmanager
def notice_receiver() -> Iterator[Receiver]:
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                status = receiver.status
                if status == 200:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()},
                                              body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/notices"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def wait_for(condition: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def register_gateway(tmp_path: Path, env: dict[str, str], numbers: list[str],
                     notice_url: str) -> PrivateKey:
    """Through the CLI: a gateway home whose registry holds ``numbers`` (active contracts) and
    the organizer "chat", whose notices go to ``notice_url``. Returns chat's private key."""
    from numident.client.keys import generate_key, save_public_key

    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
        f"{n},C-{i},active,2024-01-01\n" for i, n in enumerate(numbers)), encoding="utf-8")
    cli(["operator", "import-subscribers", str(export)], env)
    key = generate_key()
    save_public_key(key.public(), tmp_path / "chat.pub.json")
    cli(["operator", "add-organizer", "chat", "--notice-url", notice_url,
         "--public-key", str(tmp_path / "chat.pub.json")], env)
    return key


ALFA_INN = "7700000016"
"""The operator of the demo plan's +7916555.... range."""


@dataclass
class TwoSides:
    """A gateway and a messenger service as processes that exchanged keys, and the organizer's
    backend as a client of the messenger's API."""

    gateway: Server
    messenger: Server
    backend: httpx2.Client
    sms: Path
    config: Path
    """The messenger's configuration file."""
    gateway_env: dict[str, str]
    messenger_env: dict[str, str]


@contextmanager
def two_sides(tmp_path: Path, subscribers: str, *, gateway_env: dict[str, str] | None = None,
              messenger_env: dict[str, str] | None = None,
              keys_by_cli: bool = True) -> Iterator[TwoSides]:
    """Operator Alfa with the billing export ``subscribers`` and organizer "chat" registered;
    chat's messenger service routing the demo plan to it. Each side gives the other its public
    key by the CLI, as two organisations would; with ``keys_by_cli=False`` the test writes
    both key pairs where the servers look for them (two process starts fewer)."""
    from numident.client.keys import generate_key, save_private_key, save_public_key
    from numident.demo.data import write_plan

    gateway_port, messenger_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    gateway_env = {"NUMIDENT_HOME": str(tmp_path / "gateway"),
                   "NUMIDENT_OPERATOR__PUBLIC_URL": gateway_url,
                   "NUMIDENT_OPERATOR__ADMIN_TOKEN": "staff-secret", **(gateway_env or {})}
    messenger_env = {"NUMIDENT_HOME": str(tmp_path / "messenger"), **(messenger_env or {})}
    if keys_by_cli:
        (tmp_path / "gateway.jwk").write_text(
            cli(["operator", "public-key"], gateway_env).stdout)
        (tmp_path / "messenger.jwk").write_text(
            cli(["messenger", "public-key"], messenger_env).stdout)
    else:
        for home, name, side in ((gateway_env, "gateway", "operator/signing-key.pem"),
                                 (messenger_env, "messenger", "messenger/organizer-key.pem")):
            key = generate_key()
            save_private_key(key, Path(home["NUMIDENT_HOME"]) / side)
            save_public_key(key.public(), tmp_path / f"{name}.jwk")
    export = tmp_path / "subscribers.csv"
    export.write_text(subscribers, encoding="utf-8")
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
    try:
        messenger = start_server("messenger", messenger_env, tmp_path / "messenger.log",
                                 messenger_port, config=config)
        backend = httpx2.Client(base_url=messenger.url,
                                headers={"Authorization": "Bearer backend-secret"})
        try:
            yield TwoSides(gateway, messenger, backend, sms, config, gateway_env,
                           messenger_env)
        finally:
            backend.close()
            messenger.stop()
    finally:
        gateway.stop()
