"""ASGI middleware shared by both servers: correlation ids and a bound on request bodies."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATOR_PATTERN = r"[a-zA-Z0-9\-_:;./<>{}]{1,256}"
"""CAMARA's ``XCorrelator`` pattern, non-empty."""
_CORRELATOR = re.compile(CORRELATOR_PATTERN)


class Correlator:
    """Echo a well-formed ``x-correlator`` request header on the response (CAMARA).

    A value outside the CAMARA ``XCorrelator`` pattern is not echoed: it could carry header
    injection or log forging, and the client's own correlation is then lost, not falsified.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = next((v for k, v in scope["headers"] if k == b"x-correlator"), None)
        if value is None or _CORRELATOR.fullmatch(value.decode("latin-1")) is None:
            await self.app(scope, receive, send)
            return

        async def send_with_correlator(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-correlator", value)]
            await send(message)

        await self.app(scope, receive, send_with_correlator)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with the error body, before the app runs.

    The declared ``Content-Length`` is checked first; a body without one (chunked) is read
    up to the limit and handed on only when it fits, so no upload slips past the bound.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            if declared.isdigit() and int(declared) > self.limit:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"status": 400, "code": "PAYLOAD_TOO_LARGE",
                           "message": f"request body exceeds {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
