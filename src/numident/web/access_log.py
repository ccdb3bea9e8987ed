"""The access log and the HTTP metrics: one line and one observation per request.

Each request gets an id: the caller's ``X-Request-Id``, else its ``x-correlator``, when it is
well formed (CAMARA's ``XCorrelator`` pattern), else a new random one. It is returned in the
response's ``x-request-id`` header and bound to every log line written while the request is
served. When the response is done, one ``request`` line records the request id, method,
route (the path template, so ``/identification/v1/requests/{requestId}``), path, status,
duration, client address, and what the route learnt about the caller (:func:`note_organizer`)
and the subscriber (:func:`note_subscriber`).

A phone number is never written in clear: the subscriber is an HMAC-SHA256 digest under the
log key (:func:`subscriber_digest`, 16 hex digits), and whatever looks like a phone number in
the path (10 to 15 digits standing alone) is replaced by its digest (``#`` + digest). Equal
numbers give equal digests, so one subscriber's requests can be followed through the log, but
the digests cannot be reversed by trying every number without the key. The query string is
not logged.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

import structlog
from pydantic import SecretStr
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from numident.web.metrics import HttpMetrics
from numident.web.middleware import CORRELATOR_PATTERN

log = structlog.get_logger("numident.access")

_WELL_FORMED = re.compile(CORRELATOR_PATTERN)
_NUMBER = re.compile(r"(?<![0-9A-Za-z])\+?\d{10,15}(?![0-9A-Za-z])")
"""What may be a phone number in a path: 10 to 15 digits (E.164, national forms), standing
alone rather than inside an id."""
UNMATCHED = "unmatched"
"""The route label of a request that no route matched (bounds the metrics' label values)."""


@dataclass
class RequestFacts:
    """What the access log line of the request being served will say about its caller."""

    request_id: str
    organizer: str | None = None
    subscriber: str | None = None


_facts: ContextVar[RequestFacts | None] = ContextVar("numident_request_facts", default=None)


def note_organizer(name: str) -> None:
    """Name the authenticated organizer (or client) in the current request's access line."""
    facts = _facts.get()
    if facts is not None:
        facts.organizer = name


def note_subscriber(phone_number: str) -> None:
    """Record which subscriber the current request is about (logged as a digest only)."""
    facts = _facts.get()
    if facts is not None:
        facts.subscriber = phone_number


LOG_KEY_LABEL = b"numident log key"


def log_key(configured: SecretStr | None, side_secret: bytes) -> bytes:
    """The configured ``log_key`` (hex), else a key derived from the side's own secret
    (HMAC-SHA256 of a fixed label), so that the digests stay stable across restarts and reveal
    nothing of that secret."""
    if configured is not None:
        return bytes.fromhex(configured.get_secret_value())
    return hmac.digest(side_secret, LOG_KEY_LABEL, "sha256")


def subscriber_digest(key: bytes, phone_number: str) -> str:
    """The keyed digest standing for ``phone_number`` in logs."""
    return hmac.digest(key, phone_number.encode(), "sha256").hex()[:16]


_ID_HEADERS = (b"x-request-id", b"x-correlator")
"""Where a caller's request id is read, in order of preference."""


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's well-formed ``X-Request-Id`` or ``x-correlator``, else a new id."""
    given = {name: value for name, value in headers if name in _ID_HEADERS}
    for name in _ID_HEADERS:
        value = given.get(name, b"").decode("latin-1")
        if _WELL_FORMED.fullmatch(value):
            return value
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The path template of the route that served ``scope``, or :data:`UNMATCHED`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        if candidate.matches(scope)[0] is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED))
    return UNMATCHED


class AccessLog:
    """Log one line and observe :class:`HttpMetrics` for every HTTP request."""

    def __init__(self, app: ASGIApp, *, key: bytes, metrics: HttpMetrics) -> None:
        self.app = app
        self.key = key
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts(request_id_of(scope["headers"]))
        status = 500  # what the client gets when the application raises
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", facts.request_id.encode("latin-1"))]
            await send(message)

        reset = _facts.set(facts)
        # Bound and reset by token: structlog's bound_contextvars reads every bound variable
        # to restore them, the dearest part of this middleware.
        bound = structlog.contextvars.bind_contextvars(request_id=facts.request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            try:
                self._record(scope, facts, status, time.perf_counter() - started)
            finally:
                structlog.contextvars.reset_contextvars(**bound)
                _facts.reset(reset)

    def _record(self, scope: Scope, facts: RequestFacts, status: int, seconds: float) -> None:
        route = route_of(scope)
        self.metrics.observe(scope["method"], route, status, seconds)
        if not log.is_enabled_for(logging.INFO):  # log_level WARNING: no digests to compute
            return
        path = _NUMBER.sub(lambda m: "#" + subscriber_digest(self.key, m.group()), scope["path"])
        client = scope.get("client")
        log.info("request", method=scope["method"], route=route, path=path, status=status,
                 duration_ms=round(seconds * 1000, 2), organizer=facts.organizer,
                 subscriber=(subscriber_digest(self.key, facts.subscriber)
                             if facts.subscriber else None),
                 client=client[0] if client else None)
