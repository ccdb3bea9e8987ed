"""Each channel end to end: a messenger process proves possession with a code that the
channel's provider carried, either the file sender or an HTTP provider stub on loopback that
records what it received. (The operator's part is tested elsewhere: here no gateway runs.)"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
from e2e_servers import Server, start_server

from numident.config import load_settings
from numident.demo.data import write_plan
from numident.messenger.bootstrap import routing_service
from numident.messenger.sms import code_in, last_code_in_file
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

NUMBERS = ("+79165550001", "+79165550002", "+79165550003", "+79165550004")


@dataclass
class Provider:
    """The stub: records (path, headers, body); ``fail`` answers a path with a status,
    ``stall`` answers it only after that many seconds. A flash call is answered with a
    calling number of its own choosing, as real providers do."""

    url: str
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)
    """The calling numbers the flash call answers reported."""
    fail: dict[str, int] = field(default_factory=dict)
    stall: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [json.loads(body) for p, _, body in self.received if p == path]

    def headers(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [headers for p, headers, _ in self.received if p == path]


@contextmanager
def provider_stub() -> Iterator[Provider]:
    provider = Provider("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with provider.lock:
                provider.received.append((self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}, body))
            time.sleep(provider.stall.get(self.path, 0))
            status = provider.fail.get(self.path, 200)
            answer = b"{}"
            if self.path == "/flash" and status == 200:
                caller = "+7800555" + "".join(secrets.choice("0123456789") for _ in range(4))
                answer = json.dumps({"call": {"caller": caller}}).encode()
                with provider.lock:
                    provider.callers.append(caller)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a stalled answer: the messenger stopped waiting for it, as it should

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()


def messenger(tmp_path: Path, channels: str) -> Server:
    """A messenger process with the numbering plan loaded (in this process: only the server
    is a child) and the channels' providers as ``channels`` configures them."""
    config = tmp_path / "messenger.toml"
    config.write_text(f"""
home = "{tmp_path / 'home'}"
[messenger]
organizer = "chat"
api_token = "backend"
channels = {{ order = ["flash_call", "sms", "voice_call"], initial_backoff_seconds = 0.1 }}
{channels}
""", encoding="utf-8")
    settings = load_settings(config)
    engine = create_database_engine(settings.database_url_for("messenger"))
    try:
        upgrade(engine, "messenger")
        routing_service(settings, engine).import_plan(write_plan(tmp_path / "plan.csv"))
    finally:
        engine.dispose()
    return start_server("messenger", {}, tmp_path / "messenger.log", config=config)


def proven(api: httpx2.Client, account: str, code: str) -> bool:
    """Possession is proven: the code is taken (a wrong one is 400) and the account moves on
    to its operator (no gateway is configured here, so it is refused at once)."""
    confirm = api.post(f"/messenger/v1/accounts/{account}/phone-number/confirm",
                       json={"code": code})
    assert confirm.status_code == 202, confirm.text
    return confirm.json()["state"] in {"pending", "refused"}


def put(api: httpx2.Client, account: str, number: str, channel: str | None = None
        ) -> httpx2.Response:
    body = {"phoneNumber": number, **({"channel": channel} if channel else {})}
    return api.put(f"/messenger/v1/accounts/{account}/phone-number", json=body)


def test_each_channel_through_the_file_senders(tmp_path: Path) -> None:
    """Flash call (the default), SMS and voice call each carry a code that identifies."""
    files = {c: tmp_path / f"{c}.jsonl" for c in ("sms", "flash_call", "voice_call")}
    server = messenger(tmp_path, "\n".join(
        f'{c} = {{ kind = "file", path = "{p}" }}' for c, p in files.items()))
    try:
        with httpx2.Client(base_url=server.url, timeout=10,
                           headers={"Authorization": "Bearer backend"}) as api:
            for account, number, channel in (("a", NUMBERS[0], None),
                                             ("b", NUMBERS[1], "sms"),
                                             ("c", NUMBERS[2], "voice_call")):
                assert put(api, account, number, channel).status_code == 202
                used = channel or "flash_call"
                code = last_code_in_file(files[used], number)
                assert code is not None
                assert len(code) == (4 if used == "flash_call" else 6)
                assert proven(api, account, code)
        for channel, path in files.items():
            assert len(path.read_text().splitlines()) == 1, channel
    finally:
        server.stop()


def test_each_channel_through_an_http_provider_and_failures_fall_back(
        tmp_path: Path) -> None:
    """The stub receives each channel's configured request shape and credentials; a flash
    call provider that answers 500, then one that times out, hands the code to SMS."""
    with provider_stub() as stub:
        server = messenger(tmp_path, f"""
sms = {{ kind = "http", url = "{stub.url}/sms", token = "sms-token" }}
[messenger.voice_call]
kind = "http"
url = "{stub.url}/voice"
username = "acct"
password = "pw"
body = {{ phone = "{{to_digits}}", pin = "{{code}}" }}
[messenger.flash_call]
kind = "http"
url = "{stub.url}/flash"
token = "flash-key"
token_header = "X-Api-Key"
caller_field = "call.caller"
timeout_seconds = 0.5
""")
        try:
            with httpx2.Client(base_url=server.url, timeout=10,
                               headers={"Authorization": "Bearer backend"}) as api:
                assert put(api, "a", NUMBERS[0]).status_code == 202
                [flash] = stub.bodies("/flash")
                assert flash == {"to": NUMBERS[0]}
                assert stub.headers("/flash")[0]["x-api-key"] == "flash-key"
                assert proven(api, "a", stub.callers[-1][-4:])

                assert put(api, "b", NUMBERS[1], "sms").status_code == 202
                [sms] = stub.bodies("/sms")
                assert sms["to"] == NUMBERS[1]
                assert stub.headers("/sms")[0]["authorization"] == "Bearer sms-token"
                assert proven(api, "b", code_in(sms["text"]))

                assert put(api, "c", NUMBERS[2], "voice_call").status_code == 202
                [voice] = stub.bodies("/voice")
                assert voice["phone"] == NUMBERS[2].lstrip("+")
                assert stub.headers("/voice")[0]["authorization"].startswith("Basic ")
                assert proven(api, "c", voice["pin"])

                stub.fail["/flash"] = 500
                assert put(api, "d", NUMBERS[3]).status_code == 202
                fallback = stub.bodies("/sms")[-1]
                assert fallback["to"] == NUMBERS[3]
                assert proven(api, "d", code_in(fallback["text"]))

                del stub.fail["/flash"]
                stub.stall["/flash"] = 1.5
                started = time.monotonic()
                assert put(api, "e", NUMBERS[3]).status_code == 202
                assert time.monotonic() - started < 1.5
                timed_out = stub.bodies("/sms")[-1]
                assert (len(stub.bodies("/flash")), len(stub.bodies("/sms"))) == (3, 3)
                assert proven(api, "e", code_in(timed_out["text"]))
        finally:
            server.stop()

