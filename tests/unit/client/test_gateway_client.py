"""``numident.client.GatewayClient`` on its own, against a scripted gateway (no sockets)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx2
import pytest
from joserfc import jws

from numident.client import Answer, GatewayClient, Result, TryLater, generate_key
from numident.core.clock import FakeClock

pytestmark = pytest.mark.anyio

GATEWAY = "http://gw.test"


class Gateway:
    """Answers tokens and identification requests; records what it was sent."""

    def __init__(self) -> None:
        self.token_forms: list[tuple[str, dict[str, list[str]]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/token"):
            self.token_forms.append((str(request.url), parse_qs(request.content.decode())))
            return httpx2.Response(200, json={"access_token": "t", "expires_in": 300,
                                              "token_type": "Bearer"})
        if request.headers.get("authorization") != "Bearer t":
            return httpx2.Response(401, json={"code": "UNAUTHENTICATED"})
        return httpx2.Response(200, json={"requestId": "r-1", "status": "answered",
                                          "result": "confirmed",
                                          "receivedAt": "2026-01-01T00:00:00Z"})


def audience(form: dict[str, list[str]]) -> object:
    claims = json.loads(jws.extract_compact(form["client_assertion"][0].encode()).payload)
    return claims["aud"]


async def test_the_token_comes_from_the_gateways_token_endpoint_by_default() -> None:
    """Without ``token_url`` the assertion is made for, and sent to, ``<gateway>/oauth2/token``
    as ``client_id``; the answer is parsed into an ``Answer``."""
    gateway = Gateway()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(gateway)) as http:
        client = GatewayClient(GATEWAY + "/", "chat", generate_key(), http=http,
                               clock=FakeClock())
        reply = await client.submit("+79161234567", "user-1")

    assert isinstance(reply, Answer)
    assert (reply.request_id, reply.result) == ("r-1", Result.CONFIRMED)
    [(url, form)] = gateway.token_forms
    assert url == f"{GATEWAY}/oauth2/token"
    assert form["client_id"] == ["chat"]
    assert audience(form) == f"{GATEWAY}/oauth2/token"


async def test_a_configured_token_url_is_used_for_the_request_and_the_audience() -> None:
    """A gateway whose token endpoint lives elsewhere is reached there."""
    gateway = Gateway()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(gateway)) as http:
        client = GatewayClient(GATEWAY, "chat", generate_key(), http=http, clock=FakeClock(),
                               token_url="http://auth.test/token")
        await client.submit("+79161234567", "user-1")

    [(url, form)] = gateway.token_forms
    assert url == "http://auth.test/token"
    assert audience(form) == "http://auth.test/token"


async def test_a_given_connection_pool_stays_open_after_the_client_closes() -> None:
    """``async with`` closes only a pool the client opened itself; the caller's stays usable."""
    gateway = Gateway()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(gateway)) as http:
        async with GatewayClient(GATEWAY, "chat", generate_key(), http=http) as client:
            await client.submit("+79161234567", "user-1")
        assert not http.is_closed
        assert (await http.get(GATEWAY + "/oauth2/token")).status_code == 200


async def test_an_unreachable_gateway_is_a_value_to_retry_not_an_exception() -> None:
    """With its own pool and nothing listening, a call returns ``TryLater`` naming the network
    error."""
    async with GatewayClient("http://127.0.0.1:9", "chat", generate_key(), timeout=5) as client:
        reply = await client.submit("+79161234567", "user-1")

    assert isinstance(reply, TryLater)
    assert reply.reason.startswith("NETWORK: ")
