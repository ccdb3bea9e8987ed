"""The HTTP API for the organizer's backend: auth, input rules, the account view, webhooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from messenger_fakes import ALPHA, LOOKUP, ScriptedGateway, answered, make_settings
from sqlalchemy import Engine

from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import FakeClock
from numident.messenger.app import create_app
from numident.messenger.bootstrap import routing_service
from numident.messenger.operators import RoutingLookup
from numident.messenger.service import MessengerService, can_send
from numident.messenger.sms import MemorySmsSender

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"
AUTH = {"Authorization": "Bearer backend-secret"}


class Hooks:
    """The organizer's backend receiving state-change webhooks."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.received.append(json.loads(request.content))
        return httpx2.Response(204)


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
async def app(tmp_path: Path, engine: Engine, clock: FakeClock, gateway: ScriptedGateway,
              sms: MemorySmsSender, operator_keys: dict[str, PrivateKey],
              hooks: Hooks) -> AsyncIterator[FastAPI]:
    settings = make_settings(tmp_path, operator_keys, api_token="backend-secret",
                             webhook_url="http://backend.test/hooks")
    app = create_app(settings, engine=engine, clock=clock, sms_sender=sms, lookup=LOOKUP,
                     transport_for_operator=gateway.transport, key=generate_key(),
                     webhook_transport=httpx2.MockTransport(hooks.handler),
                     background=False, migrate=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                 base_url="http://messenger.test") as client:
        yield client


def service_of(app: FastAPI) -> MessengerService:
    return app.state.service  # type: ignore[no-any-return]


async def test_backend_without_the_api_token_is_refused(client: httpx2.AsyncClient) -> None:
    """No or a wrong bearer token -> 401 with a stable code."""
    missing = await client.get("/messenger/v1/accounts/user-1")
    wrong = await client.get("/messenger/v1/accounts/user-1",
                             headers={"Authorization": "Bearer guess"})
    assert (missing.status_code, missing.json()["code"]) == (401, "MISSING_TOKEN")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "INVALID_TOKEN")


async def test_whole_flow_over_http_opens_the_gate(
        app: FastAPI, client: httpx2.AsyncClient, sms: MemorySmsSender,
        gateway: ScriptedGateway) -> None:
    """PUT number -> 202 verifying_possession; confirm -> pending; answer -> canSend true."""
    gateway.default = answered("confirmed")
    put = await client.put("/messenger/v1/accounts/user-1/phone-number",
                           json={"phoneNumber": "+7 916 123-45-67"}, headers=AUTH)
    assert put.status_code == 202
    assert (put.json()["state"], put.json()["phoneNumber"]) == ("verifying_possession", NUMBER)
    confirm = await client.post("/messenger/v1/accounts/user-1/phone-number/confirm",
                                json={"code": sms.last_code(NUMBER)}, headers=AUTH)
    assert (confirm.status_code, confirm.json()["state"]) == (202, "pending")
    await service_of(app).run_identifications()
    view = (await client.get("/messenger/v1/accounts/user-1", headers=AUTH)).json()
    assert {k: view[k] for k in ("accountId", "state", "operator", "canSend", "reason")} == {
        "accountId": "user-1", "state": "identified", "operator": ALPHA, "canSend": True,
        "reason": None}
    assert view["identificationCode"] not in (NUMBER, "user-1")
    assert can_send(service_of(app), "user-1") is view["canSend"]


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/messenger/v1/accounts/user-1/phone-number", {"phoneNumber": "not a number"},
     "INVALID_PHONE_NUMBER"),
    ("/messenger/v1/accounts/user-1/phone-number", {"phoneNumber": "+12025550143"},
     "UNSUPPORTED_COUNTRY"),
    ("/messenger/v1/accounts/user-1/phone-number", {"phoneNumber": NUMBER, "extra": 1},
     "INVALID_ARGUMENT"),
    ("/messenger/v1/accounts/user-1/phone-number", {"phoneNumber": 79161234567},
     "INVALID_ARGUMENT"),
    ("/messenger/v1/accounts/bad%20id/phone-number", {"phoneNumber": NUMBER},
     "INVALID_ACCOUNT_ID"),
    ("/messenger/v1/accounts/" + "a" * 129 + "/phone-number", {"phoneNumber": NUMBER},
     "INVALID_ACCOUNT_ID"),
])
async def test_bad_input_is_a_400_with_a_stable_code(client: httpx2.AsyncClient, path: str,
                                                      body: object, code: str) -> None:
    """Every kind of bad input is refused with the error body, never a 500."""
    response = await client.put(path, json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_malformed_json_is_a_400(client: httpx2.AsyncClient) -> None:
    """A body that is not JSON is refused as such."""
    response = await client.put("/messenger/v1/accounts/user-1/phone-number",
                                content=b"{nope", headers={**AUTH,
                                                           "Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, "INVALID_ARGUMENT")


async def test_unknown_account_is_a_404(client: httpx2.AsyncClient) -> None:
    """GET and confirm of an account never seen -> 404."""
    get = await client.get("/messenger/v1/accounts/ghost", headers=AUTH)
    confirm = await client.post("/messenger/v1/accounts/ghost/phone-number/confirm",
                                json={"code": "123456"}, headers=AUTH)
    assert (get.status_code, get.json()["code"]) == (404, "ACCOUNT_NOT_FOUND")
    assert confirm.status_code == 404


async def test_wrong_code_over_http_says_how_many_tries_are_left(
        client: httpx2.AsyncClient, sms: MemorySmsSender) -> None:
    """A wrong code is a 400 WRONG_CODE; the account still waits for the right one."""
    await client.put("/messenger/v1/accounts/user-1/phone-number",
                     json={"phoneNumber": NUMBER}, headers=AUTH)
    wrong = "000000" if sms.last_code(NUMBER) != "000000" else "111111"
    response = await client.post("/messenger/v1/accounts/user-1/phone-number/confirm",
                                 json={"code": wrong}, headers=AUTH)
    assert (response.status_code, response.json()["code"]) == (400, "WRONG_CODE")
    assert response.json()["message"] == "the code is wrong; 4 attempt(s) left"


async def test_resend_too_soon_is_a_429_with_retry_after(client: httpx2.AsyncClient) -> None:
    """A second PUT within the resend interval is throttled."""
    for _ in range(2):
        response = await client.put("/messenger/v1/accounts/user-1/phone-number",
                                    json={"phoneNumber": NUMBER}, headers=AUTH)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "60")


async def test_every_transition_reaches_the_backend_by_webhook(
        app: FastAPI, client: httpx2.AsyncClient, sms: MemorySmsSender,
        gateway: ScriptedGateway, hooks: Hooks) -> None:
    """The outbox delivers one {accountId, from, to, at} per committed transition (in any
    order: delivery is at-least-once and unordered, the backend reads the account for truth)."""
    gateway.default = answered("not_found")
    await client.put("/messenger/v1/accounts/user-1/phone-number",
                     json={"phoneNumber": NUMBER}, headers=AUTH)
    await client.post("/messenger/v1/accounts/user-1/phone-number/confirm",
                      json={"code": sms.last_code(NUMBER)}, headers=AUTH)
    await service_of(app).run_identifications()
    assert await service_of(app).deliver_outbox() == 3
    assert sorted((h["from"], h["to"]) for h in hooks.received) == [
        ("pending", "refused"), ("unidentified", "verifying_possession"),
        ("verifying_possession", "pending")]
    assert {h["accountId"] for h in hooks.received} == {"user-1"}
    assert hooks.received[0]["at"] == "2026-01-01T12:00:00Z"


async def test_number_change_withdraws_the_old_usage_durably(
        app: FastAPI, client: httpx2.AsyncClient, sms: MemorySmsSender,
        gateway: ScriptedGateway, clock: FakeClock) -> None:
    """The old code is withdrawn at the old operator (retried while it is down); a new code
    is used for the new number."""
    gateway.default = answered("confirmed")
    await client.put("/messenger/v1/accounts/user-1/phone-number",
                     json={"phoneNumber": NUMBER}, headers=AUTH)
    await client.post("/messenger/v1/accounts/user-1/phone-number/confirm",
                      json={"code": sms.last_code(NUMBER)}, headers=AUTH)
    await service_of(app).run_identifications()
    old_code = service_of(app).status("user-1").identification_code
    clock.advance(60)
    put = await client.put("/messenger/v1/accounts/user-1/phone-number",
                           json={"phoneNumber": "+79031234567"}, headers=AUTH)
    assert put.json()["identificationCode"] != old_code
    assert put.json()["canSend"] is False
    gateway.calls.clear()
    gateway.script = [lambda request, _: httpx2.Response(503)]
    await service_of(app).deliver_outbox()
    clock.advance(5)
    gateway.script = [lambda request, _: httpx2.Response(204)]
    await service_of(app).deliver_outbox()
    deletes = [path for method, path, _ in gateway.calls if method == "DELETE"]
    assert deletes == [f"/identification/v1/usages/{old_code}"] * 2
    assert service_of(app).outbox.counts().get("delivered", 0) >= 1


async def test_health_and_metrics_are_served(app: FastAPI, client: httpx2.AsyncClient,
                                             sms: MemorySmsSender,
                                             gateway: ScriptedGateway) -> None:
    """/healthz answers ok; /metrics counts identifications by outcome."""
    gateway.default = answered("confirmed")
    await service_of(app).identify_now("user-1", NUMBER, possession_proven=True)
    health = await client.get("/healthz")
    metrics = (await client.get("/metrics")).text
    assert health.json() == {"status": "ok"}
    assert 'numident_messenger_identifications_total{outcome="identified"} 1.0' in metrics
    assert "numident_messenger_identification_seconds_count 1.0" in metrics


@pytest.mark.parametrize("typed", ["89161234567", "8 (916) 123-45-67", "9161234567",
                                   "+7 916 123 45 67"])
async def test_the_national_form_russians_type_is_accepted_and_stored_in_e164(
        client: httpx2.AsyncClient, typed: str) -> None:
    """With one region served (RU), a number without '+' is read as Russian; E.164 is stored."""
    put = await client.put("/messenger/v1/accounts/user-1/phone-number",
                           json={"phoneNumber": typed}, headers=AUTH)
    assert (put.status_code, put.json()["phoneNumber"]) == (202, NUMBER)
    view = (await client.get("/messenger/v1/accounts/user-1", headers=AUTH)).json()
    assert view["phoneNumber"] == NUMBER


@pytest.mark.parametrize(("typed", "message"), [
    ("8916123456", "not a valid number"),
    ("89161234567890", "not a valid number"),
    ("8-800", "not a valid number"),
])
async def test_invalid_national_input_is_a_400_saying_why(client: httpx2.AsyncClient,
                                                          typed: str, message: str) -> None:
    """A national form that is no valid Russian number is refused with the reason."""
    put = await client.put("/messenger/v1/accounts/user-1/phone-number",
                           json={"phoneNumber": typed}, headers=AUTH)
    assert (put.status_code, put.json()["code"]) == (400, "INVALID_PHONE_NUMBER")
    assert message in put.json()["message"]


async def national_put(tmp_path: Path, engine: Engine, operator_keys: dict[str, PrivateKey],
                       **messenger: object) -> httpx2.Response:
    settings = make_settings(tmp_path, operator_keys, api_token="backend-secret", **messenger)
    app = create_app(settings, engine=engine, sms_sender=MemorySmsSender(), lookup=LOOKUP,
                     key=generate_key(), background=False, migrate=False)
    async with app.router.lifespan_context(app), httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://messenger.test") as client:
        return await client.put("/messenger/v1/accounts/user-1/phone-number",
                                json={"phoneNumber": "89161234567"}, headers=AUTH)


async def test_national_form_is_refused_as_ambiguous_when_several_regions_are_served(
        tmp_path: Path, engine: Engine, operator_keys: dict[str, PrivateKey]) -> None:
    """Serving Russia and Kazakhstan (both +7) without a default region, 8... is a guess."""
    put = await national_put(tmp_path, engine, operator_keys, allowed_regions=["RU", "KZ"])
    assert (put.status_code, put.json()["code"]) == (400, "INVALID_PHONE_NUMBER")
    assert "ambiguous" in put.json()["message"]
    assert "+79161234567" in put.json()["message"]


async def test_default_region_reads_national_forms_among_several_regions(
        tmp_path: Path, engine: Engine, operator_keys: dict[str, PrivateKey]) -> None:
    """default_region = RU settles it: 89161234567 is +79161234567."""
    put = await national_put(tmp_path, engine, operator_keys, allowed_regions=["RU", "KZ"],
                             default_region="RU")
    assert (put.status_code, put.json()["phoneNumber"]) == (202, NUMBER)


async def test_codes_go_only_to_russian_mobile_numbers_even_where_other_regions_are_served(
        tmp_path: Path, engine: Engine, operator_keys: dict[str, PrivateKey]) -> None:
    """Kazakhstan allowed: its +77... number is valid input, but the Russian plan's router
    holds no such number: 422 NUMBER_NOT_MOBILE, and no SMS."""
    settings = make_settings(tmp_path, operator_keys, api_token="backend-secret",
                             allowed_regions=["RU", "KZ"])
    sms = MemorySmsSender()
    app = create_app(settings, engine=engine, sms_sender=sms,
                     lookup=RoutingLookup(routing_service(settings, engine)),
                     key=generate_key(), background=False, migrate=False)
    async with app.router.lifespan_context(app), httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://messenger.test") as client:
        put = await client.put("/messenger/v1/accounts/user-1/phone-number",
                               json={"phoneNumber": "+77012345678"}, headers=AUTH)
    assert (put.status_code, put.json()["code"]) == (422, "NUMBER_NOT_MOBILE")
    assert sms.sent == []


async def test_a_spent_budget_is_a_429_with_retry_after_over_http(
        tmp_path: Path, engine: Engine, operator_keys: dict[str, PrivateKey]) -> None:
    """One code per address and hour: the second request from 192.0.2.1 (the body's
    clientAddress) is 429 SEND_BUDGET_EXHAUSTED with Retry-After; another address passes."""
    settings = make_settings(tmp_path, operator_keys, api_token="backend-secret", possession={
        "secret": "s" * 32, "budgets": {"per_address": {"sends": 1}}})
    app = create_app(settings, engine=engine, sms_sender=MemorySmsSender(), lookup=LOOKUP,
                     key=generate_key(), background=False, migrate=False)
    async with app.router.lifespan_context(app), httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://messenger.test") as client:
        replies = [await client.put(f"/messenger/v1/accounts/user-{i}/phone-number", json={
            "phoneNumber": f"+7916123456{i}", "clientAddress": address}, headers=AUTH)
            for i, address in enumerate(("192.0.2.1", "192.0.2.1", "192.0.2.2"))]
    assert [r.status_code for r in replies] == [202, 429, 202]
    assert replies[1].json()["code"] == "SEND_BUDGET_EXHAUSTED"
    assert 3590 <= int(replies[1].headers["Retry-After"]) <= 3600
