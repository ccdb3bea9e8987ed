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

import httpx2

NUMIDENT = [sys.executable, "-m", "numident"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(args: list[str], env: dict[str, str], *, check: bool = True,
        command: list[str] = NUMIDENT) -> subprocess.CompletedProcess[str]:
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
                 config: Path | None = None, command: list[str] = NUMIDENT) -> Server:
    """Start ``numident SIDE serve`` (through ``command``) and wait until its /healthz
    answers."""
    port = port or free_port()
    options = ["--config", str(config)] if config else []
    with log.open("ab") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen([*command, side, "serve", "--host", "127.0.0.1",
                                    "--port", str(port), *options], env={**os.environ, **env},
                                   stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    # Importing the servers alone takes over 10 s on a loaded 2-core machine.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{side} server exited: {log.read_text(errors='replace')}")
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(process, url, log)
        except httpx2.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{side} server did not start: {log.read_text(errors='replace')}")


@dataclass
class Receiver:
    """An organizer's notice endpoint: records every POST, optionally answering slowly."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0
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
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()},
                                          body))
            self.send_response(200)
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
