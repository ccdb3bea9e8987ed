"""Test doubles for the messenger unit tests: a scripted operator gateway on ``MockTransport``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2

from numident.client.keys import PrivateKey
from numident.config import Settings, load_settings
from numident.core.clock import FakeClock, rfc3339
from numident.messenger.operators import StaticLookup

ALPHA = "7700000001"
BETA = "7700000002"
GAMMA = "7700000003"
"""Routed to, but no endpoint configured."""

LOOKUP = StaticLookup({"+7916": (ALPHA, "Alpha"), "+7903": (BETA, "Beta"),
                       "+7999": (GAMMA, "Gamma")})
"""+7950... is routed to nobody."""

Reply = Callable[[httpx2.Request, "ScriptedGateway"], httpx2.Response]


def answered(result: str) -> Reply:
    def reply(request: httpx2.Request, gateway: ScriptedGateway) -> httpx2.Response:
        body = json.loads(request.content) if request.method == "POST" else {}
        return httpx2.Response(200, json={
            "requestId": gateway.request_id, "status": "answered", "result": result,
            "phoneNumber": body.get("phoneNumber", "+79160000000"),
            "identificationCode": body.get("identificationCode", "x"),
            "receivedAt": rfc3339(gateway.received_at), "answeredAt": rfc3339(gateway.clock.now()),
            "answerDue": rfc3339(gateway.received_at + timedelta(minutes=20))})
    return reply


def pending() -> Reply:
    def reply(_: httpx2.Request, gateway: ScriptedGateway) -> httpx2.Response:
        return httpx2.Response(202, json={
            "requestId": gateway.request_id, "status": "pending",
            "receivedAt": rfc3339(gateway.received_at),
            "answerDue": rfc3339(gateway.received_at + timedelta(minutes=20))},
            headers={"Location": f"/identification/v1/requests/{gateway.request_id}"})
    return reply


def expired() -> Reply:
    def reply(_: httpx2.Request, gateway: ScriptedGateway) -> httpx2.Response:
        return httpx2.Response(200, json={
            "requestId": gateway.request_id, "status": "expired",
            "reason": "not answered by answerDue; the request may be sent again",
            "receivedAt": rfc3339(gateway.received_at),
            "answerDue": rfc3339(gateway.received_at + timedelta(minutes=20))})
    return reply


def failing(status: int, code: str = "UNAVAILABLE", headers: dict[str, str] | None = None
            ) -> Reply:
    def reply(_: httpx2.Request, __: ScriptedGateway) -> httpx2.Response:
        return httpx2.Response(status, json={"status": status, "code": code, "message": code},
                              headers=headers)
    return reply


def unreachable() -> Reply:
    def reply(request: httpx2.Request, _: ScriptedGateway) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)
    return reply


@dataclass
class ScriptedGateway:
    """Answers API calls from ``script`` in order (then ``default``); issues tokens freely."""

    clock: FakeClock
    script: list[Reply] = field(default_factory=list)
    default: Reply = field(default_factory=pending)
    calls: list[tuple[str, str, datetime]] = field(default_factory=list)
    tokens_issued: int = 0
    token_status: int = 200
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received_at: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.received_at = self.clock.now()

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth2/token":
            if self.token_status != 200:
                return failing(self.token_status, "INVALID_CLIENT")(request, self)
            self.tokens_issued += 1
            return httpx2.Response(200, json={"access_token": f"token-{self.tokens_issued}",
                                             "token_type": "Bearer", "expires_in": 600,
                                             "scope": "identification"})
        if request.method == "POST" and not self.calls:
            self.received_at = self.clock.now()
        self.calls.append((request.method, request.url.path, self.clock.now()))
        reply = self.script.pop(0) if self.script else self.default
        return reply(request, self)

    def transport(self, _inn: str = ALPHA) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handler)

    def times(self) -> list[float]:
        """Seconds after the first call at which each API call arrived."""
        first = self.calls[0][2]
        return [(at - first).total_seconds() for _, _, at in self.calls]


def make_settings(tmp_path: Path, operator_keys: dict[str, PrivateKey],
                  **messenger: Any) -> Settings:
    operators = [{"inn": inn, "name": f"operator {inn}", "gateway_url": f"http://{inn}.test",
                  "notice_public_key": json.dumps(key.public_jwk())}
                 for inn, key in operator_keys.items()]
    return load_settings(None, home=str(tmp_path / "home"), messenger={
        "organizer": "chat", "operators": operators,
        "possession": {"secret": "s" * 32}, **messenger})
