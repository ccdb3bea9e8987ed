"""Slow and oversized clients against real server processes on loopback.

Both ``numident operator serve`` and ``numident messenger serve`` run with a 1-second head
deadline and a 1-second body deadline. A client that dribbles its headers, sends nothing,
stops in the middle of its body, or sends 100 KB of headers loses its connection with 408 or
431, and an ordinary client is served meanwhile. Every wait is bounded and polls for the
condition; the slack allowed on a loaded machine is generous, but far below the "forever" a
server without deadlines gives.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SLACK = 8.0  # how much later than its deadline a loaded machine may close a connection
GIVE_UP = HEAD_TIMEOUT + SLACK + 5.0  # a guard that never fires fails the test, not hangs it


@dataclass
class Running:
    side: str
    port: int
    url: str
    body_path: str
    log: Path

    def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        """The server's log once it holds ``text`` (polled), or as it is after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            written = self.log.read_text(errors="replace")
            if text in written or time.monotonic() > deadline:
                return written
            time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module", params=["operator", "messenger"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Running]:
    """``numident SIDE serve`` on a free loopback port with short head and body deadlines."""
    side = str(request.param)
    home = tmp_path_factory.mktemp(side)
    section = side.upper()
    env = {**os.environ, "NUMIDENT_HOME": str(home),
           f"NUMIDENT_{section}__HTTP__HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
           f"NUMIDENT_{section}__HTTP__BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
           f"NUMIDENT_{section}__HTTP__KEEP_ALIVE_SECONDS": "30"}
    port = _free_port()
    log = (home / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "numident", side, "serve", "--host",
                                "127.0.0.1", "--port", str(port)], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (home / "server.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        yield Running(side, port, url, "/oauth2/token" if side == "operator"
                      else "/messenger/v1/notices", home / "server.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _connect(server: Running) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket, received: bytearray) -> bool:
    """Read what is there without blocking; True once the server has closed the connection."""
    while select.select([sock], [], [], 0)[0]:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        received += chunk
    return False


def _status(received: bytes) -> int:
    return int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else 0


def _error_code(received: bytes) -> str:
    return str(json.loads(received.split(b"\r\n\r\n", 1)[1])["code"])


def _normal_request_works(server: Running) -> None:
    response = httpx2.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_headers_sent_one_byte_at_a_time_are_cut_off_at_the_deadline(server: Running) -> None:
    """Twenty slowloris clients, each sending a header byte every 0.1 s, and one client that
    sends nothing, are answered 408 and disconnected about a second after connecting, while
    an ordinary client is served in the meantime."""
    started = time.monotonic()
    dribblers = [_connect(server) for _ in range(20)]
    silent = _connect(server)
    for sock in dribblers:
        sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    received = {sock: bytearray() for sock in [*dribblers, silent]}
    closed_at: dict[socket.socket, float] = {}
    served_meanwhile = False
    try:
        while len(closed_at) < len(received) and time.monotonic() - started < GIVE_UP:
            for sock, data in received.items():
                if sock in closed_at:
                    continue
                if _closed(sock, data):
                    closed_at[sock] = time.monotonic() - started
                elif sock is not silent:
                    try:
                        sock.send(b"a")
                    except OSError:
                        closed_at[sock] = time.monotonic() - started
            if not served_meanwhile and time.monotonic() - started > HEAD_TIMEOUT / 2 \
                    and not closed_at:
                _normal_request_works(server)
                served_meanwhile = True
            time.sleep(0.1)
    finally:
        for sock in received:
            sock.close()
    assert served_meanwhile
    assert len(closed_at) == len(received), f"{len(received) - len(closed_at)} still open"
    assert all(HEAD_TIMEOUT * 0.9 <= at < HEAD_TIMEOUT + SLACK for at in closed_at.values())
    assert {_status(bytes(data)) for data in received.values()} == {408}
    assert _error_code(bytes(received[silent])) == "REQUEST_TIMEOUT"
    _normal_request_works(server)


def test_a_client_that_stops_in_the_middle_of_its_body_is_dropped(server: Running) -> None:
    """A POST that announces 1000 bytes and sends 100 gets 408 and is disconnected about a
    second later; the application sees the client gone without an error; the server goes on
    serving."""
    sock = _connect(server)
    sock.send(f"POST {server.body_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n".encode()
              + b"{" + b" " * 99)
    started = time.monotonic()
    received = bytearray()
    try:
        while not _closed(sock, received) and time.monotonic() - started < GIVE_UP:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert BODY_TIMEOUT * 0.9 <= elapsed < BODY_TIMEOUT + SLACK
    assert _status(bytes(received)) == 408
    log = server.wait_for_log("client disconnected before its request was read")
    assert "client disconnected before its request was read" in log
    assert "Traceback" not in log
    _normal_request_works(server)


def test_a_request_with_100_kb_of_headers_gets_431(server: Running) -> None:
    """Headers far beyond the 16 KiB bound are refused with 431 at once, and the connection
    is closed; a request whose headers fit is still served."""
    sock = _connect(server)
    headers = "".join(f"X-Filler-{n}: {'f' * 1000}\r\n" for n in range(100))
    started = time.monotonic()
    received = bytearray()
    try:
        try:
            sock.setblocking(True)
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        except OSError:
            pass  # the server may close before the last bytes are written
        sock.setblocking(False)
        while not _closed(sock, received) and time.monotonic() - started < GIVE_UP:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert elapsed < SLACK
    assert _status(bytes(received)) == 431
    assert _error_code(bytes(received)) == "REQUEST_HEADER_FIELDS_TOO_LARGE"
    fits = httpx2.get(f"{server.url}/healthz", headers={"X-Filler": "f" * 8000}, timeout=10)
    assert fits.status_code == 200


def test_a_kept_alive_connection_gets_a_new_head_deadline_after_each_response(
        server: Running) -> None:
    """After one answered request on a kept-alive connection, a next request dribbled byte by
    byte is still cut off (the keep-alive timer alone would be cancelled by its first byte)."""
    sock = _connect(server)
    received = bytearray()
    sock.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    started = time.monotonic()
    try:
        while b"\r\n\r\n" not in received and time.monotonic() - started < GIVE_UP:
            assert not _closed(sock, received)
            time.sleep(0.02)
        assert _status(bytes(received)) == 200
        received.clear()
        started = time.monotonic()
        sock.send(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        while not closed and time.monotonic() - started < GIVE_UP:
            closed = _closed(sock, received)
            if not closed:
                try:
                    sock.send(b"X")
                except OSError:
                    closed = True
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert closed
    assert HEAD_TIMEOUT * 0.9 <= elapsed < HEAD_TIMEOUT + SLACK
    assert _status(bytes(received)) == 408
