"""The HTTP server both processes run: uvicorn's httptools protocol with bounds on slow clients.

uvicorn bounds idle kept-alive connections (``timeout_keep_alive``) and concurrency
(``limit_concurrency``: 503 past it), but it has no deadline for a request head or body that
arrives slowly: a client sending its headers one byte at a time, sending nothing, or stopping
half-way through a body, holds a connection forever. Its only head bound,
``h11_max_incomplete_event_size``, belongs to the pure-Python h11 protocol, and covers only a
head still incomplete in h11's buffer (100 KB read in one go pass it); httptools, the fast
protocol uvicorn picks by default, has none. :class:`GuardedHttpToolsProtocol` adds:

- a request's head must be whole within ``header_timeout_seconds`` of the connection opening,
  or of the previous response on a kept-alive connection; otherwise the client gets 408 and
  the connection is closed;
- its body must be whole within ``body_timeout_seconds`` of the head; otherwise 408 (when no
  response has started) and the connection is closed, which the application sees as the
  client's disconnect;
- a head (request line and headers) over ``max_header_bytes`` gets 431 and the connection is
  closed, before the application sees the request.

While the application works on a request that has fully arrived, no deadline runs. Error
bodies are the usual ``{"status", "code", "message"}``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from typing import Any, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from numident.config import HttpSettings
from numident.errors import Conflict


def ensure_port_free(host: str, port: int) -> None:
    """Refuse (``PORT_IN_USE``, exit 1) to start when ``host:port`` is taken, before anything
    else starts: uvicorn would only log a traceback-like line and exit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # uvicorn says what else is wrong with the address
            raise Conflict(f"port {port} on {host} is already in use",
                           code="PORT_IN_USE") from None


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


class _HeadTooLarge(Exception):
    """Raised in a parser callback: httptools stops parsing and uvicorn refuses the request."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's head and body and a
    bound on the head's size."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading: Literal["idle", "head", "body"] = "idle"
        self._head_bytes = 0
        self._head_too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = "head"
        self._head_bytes = 0
        if self._deadline is None:  # a pipelined request begins while the last is served
            self._arm(self.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading = "body"
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._reading = "idle"
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._reading != "body" and not self.transport.is_closing():
            self._arm(self.header_timeout)  # the next request on a kept-alive connection

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self.logger.info("refused a request head over %d bytes", self.max_header_bytes)
            self.transport.write(HEADERS_TOO_LARGE)
            self.transport.close()
            return
        super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

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
        answering = self._reading == "body" and self.cycle is not None \
            and self.cycle.response_started
        if not answering:
            self.transport.write(REQUEST_TIMEOUT)
        self.logger.info("closed a connection whose request did not arrive in time")
        self.transport.close()


def protocol_for(settings: HttpSettings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class with ``settings``' bounds (uvicorn makes one per connection)."""
    return type("ConfiguredHttpToolsProtocol", (GuardedHttpToolsProtocol,), {
        "header_timeout": settings.header_timeout_seconds,
        "body_timeout": settings.body_timeout_seconds,
        "max_header_bytes": settings.max_header_bytes,
    })


def uvicorn_options(settings: HttpSettings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` that apply ``settings``."""
    return {"http": protocol_for(settings), "timeout_keep_alive": settings.keep_alive_seconds,
            "limit_concurrency": settings.max_concurrency}
