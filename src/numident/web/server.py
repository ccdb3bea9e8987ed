"""The HTTP server both processes run: uvicorn's h11 protocol with deadlines on slow clients.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), the size of a request head
(``h11_max_incomplete_event_size``) and concurrency (``limit_concurrency``: 503 past it), but
it has no deadline for a request head or body that arrives slowly: a client sending its
headers one byte at a time, or stopping half-way through a body, holds a connection forever.
:class:`GuardedH11Protocol` adds both deadlines:

- a request's head must be whole within ``header_timeout_seconds`` of the connection opening,
  or of the previous response on a kept-alive connection (a client that sends nothing at all
  is covered too); otherwise the client gets 408 and the connection is closed;
- its body must be whole within ``body_timeout_seconds`` of the head; otherwise 408 (when no
  response has started) and the connection is closed, which the application sees as the
  client's disconnect.

A head larger than ``max_header_bytes`` is answered 431 and the connection closed. h11's own
bound covers only a head still incomplete in its buffer (one that arrives in a single read
passes it), so the size of every parsed head is checked as well, before the app sees it.
The h11 protocol is chosen over httptools, which has no head bound at all.
Error bodies are the usual ``{"status", "code", "message"}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from numident.config import HttpSettings


def _raw_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"status": status, "code": code, "message": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


REQUEST_TIMEOUT = _raw_error(408, "Request Timeout", "REQUEST_TIMEOUT",
                             "the request did not arrive in time")
HEADERS_TOO_LARGE = _raw_error(431, "Request Header Fields Too Large",
                               "REQUEST_HEADER_FIELDS_TOO_LARGE",
                               "the request's headers are too large")


class _BoundedConnection(h11.Connection):
    """An h11 server connection that refuses a parsed request head over ``max_head`` bytes."""

    def __init__(self, max_head: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_head)
        self.max_head = max_head
        self.head_too_large = False

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.head_too_large = exc.error_status_hint == 431
            raise
        if isinstance(event, h11.Request):
            size = len(event.method) + len(event.target) + sum(
                len(name) + len(value) + 4 for name, value in event.headers.raw_items())
            if size > self.max_head:
                self.head_too_large = True
                raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        return event


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head and body."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _BoundedConnection(self.max_header_bytes)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting_for_head = self.conn.their_state is h11.IDLE
        super().data_received(data)
        state = self.conn.their_state
        if waiting_for_head and state is h11.SEND_BODY:
            self._arm(self.body_timeout)
        elif state is not h11.IDLE and state is not h11.SEND_BODY:
            self._disarm()  # the request is whole (or the connection is done with)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Rearm for the next request of a kept-alive connection, unless a pipelined one
        # already arrived (its own state then decides).
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm(self.header_timeout)

    def send_400_response(self, msg: str) -> None:
        # A head over the bound is a protocol error to h11, whose status hint (431) does not
        # reach uvicorn: it would answer a generic 400.
        if isinstance(self.conn, _BoundedConnection) and self.conn.head_too_large:
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # nothing sent yet
            self.transport.write(REQUEST_TIMEOUT)
        self.logger.info("closed a connection whose request did not arrive in time")
        self.transport.close()


def protocol_for(settings: HttpSettings) -> type[GuardedH11Protocol]:
    """The protocol class with ``settings``' deadlines (uvicorn instantiates it per connection)."""
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), {
        "header_timeout": settings.header_timeout_seconds,
        "body_timeout": settings.body_timeout_seconds,
        "max_header_bytes": settings.max_header_bytes,
    })


def uvicorn_options(settings: HttpSettings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` that apply ``settings``."""
    return {"http": protocol_for(settings),
            "h11_max_incomplete_event_size": settings.max_header_bytes,
            "timeout_keep_alive": settings.keep_alive_seconds,
            "limit_concurrency": settings.max_concurrency}
