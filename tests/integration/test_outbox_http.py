"""HttpSender against a real HTTP receiver on 127.0.0.1, and the dispatcher end to end."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx2
import pytest
from outbox_fixtures import T0, commit, message, outbox_fixture  # noqa: F401

from numident.core.clock import FakeClock
from numident.outbox import DeliveryOutcome, Dispatcher, RetryPolicy, SqlOutbox, Verdict
from numident.outbox.http_sender import HttpSender

pytestmark = pytest.mark.anyio

WALL = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Receiver(ThreadingHTTPServer):
    """Answers by path: /ok 200, /fail 500, /busy 429 Retry-After 7, /later 503 with an
    HTTP-date 90 s ahead of WALL, /bad 400, /gone 410, /moved 307; records what it got."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver
    answers: ClassVar[dict[str, tuple[int, dict[str, str]]]] = {
        "/ok": (200, {}), "/fail": (500, {}), "/busy": (429, {"Retry-After": "7"}),
        "/later": (503, {"Retry-After": format_datetime(WALL + timedelta(seconds=90),
                                                        usegmt=True)}),
        "/bad": (400, {}), "/gone": (410, {}), "/moved": (307, {"Location": "/ok"}),
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append((self.path, dict(self.headers.items()), body))
        status, headers = self.answers.get(self.path, (404, {}))
        text = b"receiver says %d" % status
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(text))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


async def send_to(receiver: Receiver, path: str, **options: object) -> DeliveryOutcome:
    async with httpx2.AsyncClient(timeout=5) as client:
        sender = HttpSender(client, now=lambda: WALL, **options)  # type: ignore[arg-type]
        return await sender.send(message(1, destination=receiver.url + path))


async def test_a_2xx_answer_is_a_delivery_of_the_exact_bytes(receiver: Receiver) -> None:
    """The payload is POSTed as is, with its content type and the message id as idempotency key."""
    outcome = await send_to(receiver, "/ok")
    assert outcome == DeliveryOutcome.delivered()
    [(path, headers, body)] = receiver.received
    assert (path, body) == ("/ok", b'{"n": 1}')
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "evt-00001"


async def test_the_signer_sees_the_request_and_its_headers_are_sent(receiver: Receiver) -> None:
    """sign(method, url, body, headers) is called once; what it returns goes on the wire."""
    seen: list[tuple[str, str, bytes, dict[str, str]]] = []

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        seen.append((method, url, body, headers))
        return {"Signature": "sig1=:c2lnbmVk:", "Signature-Input": 'sig1=("content-type")'}

    await send_to(receiver, "/ok", sign=sign)
    assert seen == [("POST", receiver.url + "/ok", b'{"n": 1}',
                     {"Content-Type": "application/json", "Idempotency-Key": "evt-00001"})]
    headers = receiver.received[0][1]
    assert headers["Signature"] == "sig1=:c2lnbmVk:"
    assert headers["Signature-Input"] == 'sig1=("content-type")'


async def test_a_server_error_is_retried_with_the_status_and_body_as_reason(
    receiver: Receiver,
) -> None:
    """500 means try again later."""
    outcome = await send_to(receiver, "/fail")
    assert outcome == DeliveryOutcome.retry("HTTP 500: receiver says 500")


async def test_429_with_retry_after_seconds_is_retried_no_sooner(receiver: Receiver) -> None:
    """Retry-After: 7 becomes retry_after=7."""
    outcome = await send_to(receiver, "/busy")
    assert (outcome.verdict, outcome.retry_after) == (Verdict.RETRY, 7.0)


async def test_503_with_a_retry_after_date_is_read_against_the_wall_clock(
    receiver: Receiver,
) -> None:
    """An HTTP-date Retry-After 90 s ahead becomes retry_after=90."""
    outcome = await send_to(receiver, "/later")
    assert (outcome.verdict, outcome.retry_after) == (Verdict.RETRY, 90.0)


async def test_400_is_a_permanent_rejection(receiver: Receiver) -> None:
    """The receiver will never accept these bytes: no point retrying."""
    outcome = await send_to(receiver, "/bad")
    assert outcome == DeliveryOutcome.reject("HTTP 400: receiver says 400")


@pytest.mark.parametrize("path", ["/gone", "/missing", "/moved"])
async def test_configuration_answers_are_retried_and_redirects_not_followed(
    receiver: Receiver, path: str
) -> None:
    """410, 404 and 3xx describe the receiver's setup, which can be fixed within 24 h."""
    outcome = await send_to(receiver, path)
    assert outcome.verdict is Verdict.RETRY
    assert [p for p, _, _ in receiver.received] == [path]


async def test_a_refused_connection_is_retried() -> None:
    """Nobody listening is a network error, reported as a retry, not raised."""
    server = Receiver()  # bound, then closed: the port is free and refuses connections
    url = server.url
    server.server_close()
    async with httpx2.AsyncClient(timeout=2) as client:
        outcome = await HttpSender(client).send(message(1, destination=url + "/ok"))
    assert outcome.verdict is Verdict.RETRY
    assert outcome.error is not None
    assert "ConnectError" in outcome.error


async def test_the_dispatcher_delivers_through_http_and_retries_a_busy_receiver(
    outbox: SqlOutbox, receiver: Receiver
) -> None:
    """End to end on both stores: one notice delivered, one postponed by Retry-After."""
    clock = FakeClock(T0)
    commit(outbox, message(1, destination=receiver.url + "/ok"),
           message(2, destination=receiver.url + "/busy"))
    async with httpx2.AsyncClient(timeout=5) as client:
        dispatcher = Dispatcher(outbox, HttpSender(client), clock, RetryPolicy(jitter=0))
        assert await dispatcher.run_once() == 1
    delivered, busy = outbox.get("evt-00001"), outbox.get("evt-00002")
    assert delivered is not None
    assert busy is not None
    assert delivered.status == "delivered"
    assert (busy.status, busy.next_attempt_at) == ("pending", T0 + timedelta(seconds=7))
    assert busy.last_error == "HTTP 429: receiver says 429"
