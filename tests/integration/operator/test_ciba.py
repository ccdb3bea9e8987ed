"""CIBA (OpenID CIBA Core 1.0) end to end over HTTP: poll and ping, legitimate interest and
the subscriber's approve/deny page, and every refusal the specification names."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx2
import pytest
from joserfc import jwt
from operator_harness import ADMIN, SESSION_HEADER, SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import func, select

from numident.client.assertions import ASSERTION_TYPE
from numident.core.clock import FakeClock
from numident.operator.consent import last_url_in_file
from numident.operator.tables import audit, ciba_requests, outbox

pytestmark = pytest.mark.anyio
GRANT = "urn:openid:params:grant-type:ciba"
LINE = "+79161234567"
FRAUD = "dpv:FraudPreventionAndDetection"
IDENTITY = "dpv:IdentityVerification"
SCOPES = ["sim-swap:check", "number-verification:verify", "identification"]
CIBA = {"purposes": {FRAUD: "legitimate_interest", IDENTITY: "consent"}}
ENDPOINT = "http://127.0.0.1:9/chat/ciba"


async def gateway(make_gateway: HarnessFactory, *, clock: FakeClock | None = None,
                  **options: Any) -> Harness:
    h: Harness = await make_gateway(
        register=False, clock=clock or FakeClock(), ciba={**CIBA, **options.pop("ciba", {})},
        camara={"session_header": SESSION_HEADER, "sim_swap_http_sinks": True,
                "sim_swap_private_sinks": True}, **options)
    h.register("chat", scopes=SCOPES)
    h.import_csv(SUBSCRIBERS)
    return h


def auth_form(h: Harness, name: str = "chat") -> dict[str, str]:
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": h.assertion(name)}


async def bc_authorize(h: Harness, name: str = "chat", **params: str) -> httpx2.Response:
    form = {"login_hint": f"tel:{LINE}", "scope": f"{FRAUD} sim-swap:check", **params}
    return await h.client.post("/oauth2/bc-authorize",
                               data={k: v for k, v in (form | auth_form(h, name)).items()
                                     if v is not None})


async def started(h: Harness, **params: str) -> dict[str, Any]:
    response = await bc_authorize(h, **params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


async def poll(h: Harness, auth_req_id: str, name: str = "chat") -> httpx2.Response:
    return await h.client.post("/oauth2/token", data={
        "grant_type": GRANT, "auth_req_id": auth_req_id, **auth_form(h, name)})


def error_of(response: httpx2.Response) -> tuple[int, str]:
    """The status and ``error`` of an RFC 6749 section 5.2 body (asserting its shape)."""
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, str(body["error"])


def claims_of(h: Harness, token: str) -> dict[str, Any]:
    key = h.app.state.signing_key
    return dict(jwt.decode(token, key.jose, algorithms=[key.algorithm]).claims)


def consent_url(h: Harness) -> str:
    url = last_url_in_file(h.home / "operator" / "ciba-consent.jsonl", LINE)
    assert url is not None, "no approve/deny URL was sent"
    return url.removeprefix("http://127.0.0.1:8080")


def count(h: Harness, table: Any, *where: Any) -> int:
    with h.gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where))
                   .scalar_one())


# -- poll mode, legitimate interest -----------------------------------------------------------

async def test_legitimate_interest_approves_at_once_and_the_token_is_bound_to_the_line(
        make_gateway: HarnessFactory) -> None:
    """A fraud-prevention request is approved without asking; the poll buys a token naming
    the line, which SIM Swap accepts without a phone number in the body."""
    h = await gateway(make_gateway)
    answer = await started(h, scope=f"openid {FRAUD} sim-swap:check")
    assert (answer["expires_in"], answer["interval"]) == (300, 5)
    assert len(answer["auth_req_id"]) >= 32
    response = await poll(h, answer["auth_req_id"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()
    assert (token["token_type"], token["scope"]) == ("Bearer", "sim-swap:check")
    claims = claims_of(h, token["access_token"])
    assert (claims["sub"], claims["phone_number"], claims["client_id"]) == (LINE, LINE, "chat")
    checked = await h.client.post("/sim-swap/vwip/check", json={"maxAge": 240}, headers={
        "Authorization": f"Bearer {token['access_token']}"})
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"swapped": False}
    named = await h.client.post("/sim-swap/vwip/check", json={"phoneNumber": LINE}, headers={
        "Authorization": f"Bearer {token['access_token']}"})
    assert (named.status_code, named.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")


async def test_an_auth_req_id_buys_one_token_only(make_gateway: HarnessFactory) -> None:
    """A replayed auth_req_id is invalid_grant, and so is another client's."""
    h = await gateway(make_gateway)
    h.register("bank", scopes=SCOPES)
    auth_req_id = (await started(h))["auth_req_id"]
    assert error_of(await poll(h, auth_req_id, name="bank")) == (400, "invalid_grant")
    assert (await poll(h, auth_req_id)).status_code == 200
    assert error_of(await poll(h, auth_req_id)) == (400, "invalid_grant")
    assert error_of(await poll(h, "never-issued")) == (400, "invalid_grant")


async def test_the_phone_number_hint_and_the_operator_token_hint_name_the_line(
        make_gateway: HarnessFactory) -> None:
    """``phone_number:`` is a number like ``tel:``; ``operatortoken:`` names a network session,
    whose authentication the token carries, so Number Verification accepts it."""
    h = await gateway(make_gateway)
    auth_req_id = (await started(h, login_hint="phone_number:+79031112233"))["auth_req_id"]
    claims = claims_of(h, (await poll(h, auth_req_id)).json()["access_token"])
    assert (claims["phone_number"], claims["amr"]) == ("+79031112233", [])
    put = await h.client.put("/admin/v1/network-sessions/s-9", headers=ADMIN,
                             json={"phoneNumber": LINE, "authentication": "sim"})
    assert put.status_code == 204
    auth_req_id = (await started(h, login_hint="operatortoken:s-9",
                                 scope=f"{FRAUD} number-verification:verify"))["auth_req_id"]
    token = (await poll(h, auth_req_id)).json()["access_token"]
    assert claims_of(h, token)["amr"] == ["sim"]
    verified = await h.client.post("/number-verification/vwip/verify",
                                   json={"phoneNumber": LINE},
                                   headers={"Authorization": f"Bearer {token}"})
    assert (verified.status_code, verified.json()) == (200, {"devicePhoneNumberVerified": True})


async def test_the_metadata_announces_ciba(make_gateway: HarnessFactory) -> None:
    """RFC 8414 metadata names the endpoint, both delivery modes and the grant type."""
    h = await gateway(make_gateway)
    document = (await h.client.get("/.well-known/oauth-authorization-server")).json()
    assert document["backchannel_authentication_endpoint"] == (
        f"{document['issuer']}/oauth2/bc-authorize")
    assert document["backchannel_token_delivery_modes_supported"] == ["poll", "ping"]
    assert document["backchannel_user_code_parameter_supported"] is False
    assert GRANT in document["grant_types_supported"]


# -- consent through the subscriber's page ---------------------------------------------------

async def test_consent_purposes_wait_for_the_subscriber_who_approves_on_the_page(
        make_gateway: HarnessFactory) -> None:
    """Under consent the request is pending (polling faster than ``interval`` is slow_down,
    which adds 5 s) until the subscriber approves on the page the SMS links to."""
    clock = FakeClock()
    h = await gateway(make_gateway, clock=clock)
    answer = await started(h, scope=f"{IDENTITY} sim-swap:check", binding_message="A-7")
    auth_req_id = answer["auth_req_id"]
    assert error_of(await poll(h, auth_req_id)) == (400, "authorization_pending")
    clock.advance(4)
    slow = await poll(h, auth_req_id)
    assert error_of(slow) == (400, "slow_down")
    assert "10 seconds" in slow.json()["error_description"]
    clock.advance(6)  # 6 s after the last poll: still too soon for the new 10 s interval
    assert error_of(await poll(h, auth_req_id)) == (400, "slow_down")
    clock.advance(16)
    assert error_of(await poll(h, auth_req_id)) == (400, "authorization_pending")

    url = consent_url(h)
    page = await h.client.get(url)
    assert page.status_code == 200
    assert all(shown in page.text for shown in ("chat", IDENTITY, "sim-swap:check", "A-7"))
    approved = await h.client.post(url, data={"decision": "approve"})
    assert (approved.status_code, "approved" in approved.text) == (200, True)
    again = await h.client.post(url, data={"decision": "deny"})
    assert again.status_code == 409
    assert (await h.client.get(url)).status_code == 404
    clock.advance(20)
    token = await poll(h, auth_req_id)
    assert token.status_code == 200, token.text
    claims = claims_of(h, token.json()["access_token"])
    assert (claims["phone_number"], claims["amr"]) == (LINE, ["sms"])


async def test_a_denial_is_access_denied_once(make_gateway: HarnessFactory) -> None:
    """A subscriber's denial answers the next poll with access_denied and spends the id."""
    h = await gateway(make_gateway)
    auth_req_id = (await started(h, scope=f"{IDENTITY} sim-swap:check"))["auth_req_id"]
    denied = await h.client.post(consent_url(h), data={"decision": "deny"})
    assert (denied.status_code, "denied" in denied.text) == (200, True)
    assert error_of(await poll(h, auth_req_id)) == (400, "access_denied")
    assert error_of(await poll(h, auth_req_id)) == (400, "invalid_grant")
    with h.gateway.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit.c.action).order_by(audit.c.id))
                   if r.action.startswith("ciba.")]
    assert actions == ["ciba.requested", "ciba.denied", "ciba.denied.redeemed"]


async def test_an_unanswered_request_expires(make_gateway: HarnessFactory) -> None:
    """After ``expires_in`` the poll is expired_token and the page no longer takes answers;
    requested_expiry shortens the lifetime."""
    clock = FakeClock()
    h = await gateway(make_gateway, clock=clock)
    answer = await started(h, scope=f"{IDENTITY} sim-swap:check", requested_expiry="60")
    assert answer["expires_in"] == 60
    url = consent_url(h)
    clock.advance(60)
    assert error_of(await poll(h, answer["auth_req_id"])) == (400, "expired_token")
    assert (await h.client.post(url, data={"decision": "approve"})).status_code == 404
    assert (await h.client.get(url)).status_code == 404
    assert (await h.client.post("/oauth2/bc-consent/made-up",
                                data={"decision": "approve"})).status_code == 404


# -- ping mode -----------------------------------------------------------------------------

async def register_ping(h: Harness, endpoint: str = ENDPOINT) -> httpx2.Response:
    return await h.client.put("/admin/v1/organizers/chat/ciba", headers=ADMIN,
                              json={"deliveryMode": "ping", "notificationEndpoint": endpoint})


def pings(h: Harness) -> list[tuple[str, str, dict[str, Any]]]:
    return [(str(r.url), r.headers["authorization"], json.loads(r.content))
            for r in h.notices if str(r.url) == ENDPOINT]


async def test_ping_mode_posts_the_auth_req_id_with_the_clients_bearer_token(
        make_gateway: HarnessFactory) -> None:
    """A ping client is told of each decision by a POST to its registered endpoint: at once
    under legitimate interest, after the subscriber's answer (approval or denial) under
    consent."""
    h = await gateway(make_gateway)
    assert (await register_ping(h)).status_code == 204
    first = (await started(h, client_notification_token="nt-1"))["auth_req_id"]
    assert await h.deliver_notices() == 1
    assert pings(h) == [(ENDPOINT, "Bearer nt-1", {"auth_req_id": first})]
    assert (await poll(h, first)).status_code == 200

    second = (await started(h, client_notification_token="nt-2",
                            scope=f"{IDENTITY} sim-swap:check"))["auth_req_id"]
    assert await h.deliver_notices() == 0
    await h.client.post(consent_url(h), data={"decision": "approve"})
    assert await h.deliver_notices() == 1
    assert pings(h)[1:] == [(ENDPOINT, "Bearer nt-2", {"auth_req_id": second})]
    assert (await poll(h, second)).status_code == 200

    third = (await started(h, client_notification_token="nt-3",
                           scope=f"{IDENTITY} sim-swap:check"))["auth_req_id"]
    await h.client.post(consent_url(h), data={"decision": "deny"})
    assert await h.deliver_notices() == 1
    assert pings(h)[2:] == [(ENDPOINT, "Bearer nt-3", {"auth_req_id": third})]
    assert error_of(await poll(h, third)) == (400, "access_denied")


async def test_ping_mode_needs_a_notification_token_and_a_usable_endpoint(
        make_gateway: HarnessFactory) -> None:
    """Without client_notification_token a ping client's request is invalid_request; an
    endpoint that is not https (http only where the sink settings allow it) is refused."""
    h = await gateway(make_gateway)
    await register_ping(h)
    assert error_of(await bc_authorize(h)) == (400, "invalid_request")
    strict = await gateway(make_gateway)
    strict.app.state.ciba.http_endpoints = False
    refused = await register_ping(strict)
    assert (refused.status_code, refused.json()["code"]) == (
        400, "INVALID_NOTIFICATION_ENDPOINT")
    assert (await register_ping(strict, "https://chat.example/ciba")).status_code == 204
    anonymous = await h.client.put("/admin/v1/organizers/chat/ciba",
                                   json={"deliveryMode": "poll"})
    assert anonymous.status_code == 401


# -- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "error"), [
    ({"login_hint": "tel:+79990000000"}, "unknown_user_id"),
    ({"login_hint": "tel:+12025550123"}, "unknown_user_id"),
    ({"login_hint": "tel:+79161234569"}, "unknown_user_id"),  # terminated
    ({"login_hint": "operatortoken:no-such-session"}, "unknown_user_id"),
    ({"scope": "dpv:Marketing sim-swap:check"}, "invalid_scope"),
    ({"scope": "sim-swap:check"}, "invalid_scope"),
    ({"scope": f"{FRAUD} {IDENTITY} sim-swap:check"}, "invalid_scope"),
    ({"scope": f"{FRAUD} kyc-match:match"}, "invalid_scope"),
    ({"scope": FRAUD}, "invalid_scope"),
    ({"login_hint": "alice"}, "invalid_request"),
    ({"login_hint": "tel:not-a-number"}, "invalid_request"),
    ({"login_hint": None}, "invalid_request"),
    ({"id_token_hint": "eyJ..."}, "invalid_request"),
    ({"requested_expiry": "-5"}, "invalid_request"),
    ({"requested_expiry": "soon"}, "invalid_request"),
    ({"binding_message": "x" * 101}, "invalid_binding_message"),
])
async def test_bad_requests_get_the_specifications_error_and_leave_only_an_audit_entry(
        make_gateway: HarnessFactory, params: dict[str, str], error: str) -> None:
    """Each refusal is a 400 with the CIBA error code; no request is stored, nothing is sent
    and nothing is queued, but the refusal is in the audit trail."""
    h = await gateway(make_gateway)
    before = count(h, audit)
    assert error_of(await bc_authorize(h, **params)) == (400, error)
    assert count(h, ciba_requests) == 0
    assert count(h, outbox) == 0
    assert count(h, audit) == before + 1
    assert count(h, audit, audit.c.action == "ciba.refused") == 1
    assert not (h.home / "operator" / "ciba-consent.jsonl").exists()


async def test_unauthenticated_and_malformed_calls_are_refused_without_a_500(
        make_gateway: HarnessFactory) -> None:
    """A bad assertion is 401 invalid_client at both endpoints; a repeated parameter or a
    missing auth_req_id is invalid_request."""
    h = await gateway(make_gateway)
    forged = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not.a.jwt"}
    response = await h.client.post("/oauth2/bc-authorize", data={
        "login_hint": f"tel:{LINE}", "scope": f"{FRAUD} sim-swap:check", **forged})
    assert error_of(response) == (401, "invalid_client")
    response = await h.client.post("/oauth2/token", data={
        "grant_type": GRANT, "auth_req_id": "x", **forged})
    assert error_of(response) == (401, "invalid_client")
    repeated = await h.client.post(
        "/oauth2/bc-authorize", content=f"scope={FRAUD}&scope=x&login_hint=tel:{LINE}",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert error_of(repeated) == (400, "invalid_request")
    missing = await h.client.post("/oauth2/token", data={"grant_type": GRANT, **auth_form(h)})
    assert error_of(missing) == (400, "invalid_request")
    assert count(h, ciba_requests) == 0


async def test_oversized_parameters_are_refused_and_not_copied_into_the_audit_trail(
        make_gateway: HarnessFactory) -> None:
    """A scope or hint of a megabyte is invalid_request; the audit entry stays small."""
    h = await gateway(make_gateway)
    huge = "sim-swap:check " * 20_000
    for params in ({"scope": f"{FRAUD} {huge}"}, {"login_hint": "tel:+7" + "9" * 100_000},
                   {"client_notification_token": "t" * 5000}):
        response = await bc_authorize(h, **params)
        assert error_of(response)[0] == 400
        assert len(response.text) < 1000
    with h.gateway.engine.connect() as conn:
        details = [json.dumps(r.detail) for r in conn.execute(
            select(audit.c.detail).where(audit.c.action == "ciba.refused"))]
    assert len(details) == 3
    assert max(len(d) for d in details) < 1000


class BrokenSender:
    """A message channel that is down."""

    amr = "sms"

    def approves_at_once(self, purpose: str) -> bool:
        return False

    def ask(self, invitation: Any, now: Any) -> None:
        raise OSError("the SMS provider is unreachable")


async def test_a_subscriber_who_cannot_be_asked_leaves_no_pending_request(
        make_gateway: HarnessFactory) -> None:
    """When the consent message cannot be sent the request is refused with 503
    temporarily_unavailable and not kept: it could never be answered."""
    h = await gateway(make_gateway)
    h.app.state.ciba.capture = BrokenSender()
    response = await bc_authorize(h, scope=f"{IDENTITY} sim-swap:check")
    assert error_of(response) == (503, "temporarily_unavailable")
    assert count(h, ciba_requests) == 0
    assert count(h, audit, audit.c.action == "ciba.refused") == 1


NASTY = ["", " ", "\x00", "tel:", "tel:+", "tel:+7916123456７", "operatortoken:",
         "phone_number:+79161234567 ", f"tel:{LINE}", "dpv:", FRAUD, f"{FRAUD} sim-swap:check",
         "openid", "0", "-1", "99999999999", "1e3", "ünïcødé", "%00", "a" * 3000, "\r\n",
         "{\"json\": true}", "tel:+79161234567\ntel:+79031112233"]
FIELDS = ["login_hint", "scope", "binding_message", "requested_expiry",
          "client_notification_token", "login_hint_token", "id_token_hint", "user_code",
          "acr_values"]


async def test_generated_requests_never_get_a_server_error(
        make_gateway: HarnessFactory) -> None:
    """Seeded random forms at both endpoints: every answer is the success shape or an RFC 6749
    error body, never a 5xx, and nothing but approved requests is stored."""
    chance = random.Random(20261201)  # reproducible: the same forms on every run
    h = await gateway(make_gateway)
    accepted = 0
    for _ in range(120):
        form = {field: chance.choice(NASTY) for field in chance.sample(FIELDS, 4)}
        response = await h.client.post("/oauth2/bc-authorize", data=form | auth_form(h))
        assert response.status_code in (200, 400), (form, response.text)
        if response.status_code == 200:
            accepted += 1
            assert set(response.json()) == {"auth_req_id", "expires_in", "interval"}
        else:
            error_of(response)
        token = await h.client.post("/oauth2/token", data={
            "grant_type": GRANT, "auth_req_id": chance.choice(NASTY), **auth_form(h)})
        assert error_of(token)[0] == 400
    assert count(h, ciba_requests) == accepted


async def test_the_page_shows_the_binding_message_as_text_and_refuses_other_answers(
        make_gateway: HarnessFactory) -> None:
    """What the client wrote is escaped, the page may not be framed, and an answer other
    than approve or deny changes nothing."""
    h = await gateway(make_gateway)
    await started(h, scope=f"{IDENTITY} sim-swap:check",
                  binding_message="<script>alert(1)</script>")
    page = await h.client.get(consent_url(h))
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    odd = await h.client.post(consent_url(h), data={"decision": "maybe"})
    assert odd.status_code == 400
    assert (await h.client.get(consent_url(h))).status_code == 200


async def test_replicas_on_one_database_share_every_request(
        make_gateway: HarnessFactory) -> None:
    """A request made at one replica is approved on another's page, polled at a third, and
    its ping leaves from whichever replica's dispatcher runs."""
    clock = FakeClock()
    first = await gateway(make_gateway, clock=clock)
    second: Harness = await make_gateway(register=False, clock=clock, ciba=CIBA, camara={
        "session_header": SESSION_HEADER, "sim_swap_http_sinks": True,
        "sim_swap_private_sinks": True})
    second.keys = first.keys
    await register_ping(first)
    auth_req_id = (await started(first, scope=f"{IDENTITY} sim-swap:check",
                                 client_notification_token="nt-9"))["auth_req_id"]
    assert error_of(await poll(second, auth_req_id)) == (400, "authorization_pending")
    clock.advance(1)
    assert error_of(await poll(first, auth_req_id)) == (400, "slow_down")
    approved = await second.client.post(consent_url(first), data={"decision": "approve"})
    assert approved.status_code == 200
    assert await second.deliver_notices() == 1
    assert pings(second) == [(ENDPOINT, "Bearer nt-9", {"auth_req_id": auth_req_id})]
    assert (await poll(first, auth_req_id)).status_code == 200
    assert error_of(await poll(second, auth_req_id)) == (400, "invalid_grant")


@pytest.mark.parametrize("endpoint", ["http://[::1", "https://chat.example/ciba#frag",
                                      "https://chat example/ciba", "ftp://chat.example/ciba",
                                      "https:///ciba", None])
async def test_malformed_notification_endpoints_are_refused_with_the_error_body(
        make_gateway: HarnessFactory, endpoint: str | None) -> None:
    """Staff get 400 INVALID_NOTIFICATION_ENDPOINT for any endpoint that cannot be pinged;
    the client stays in poll mode."""
    h = await gateway(make_gateway)
    response = await h.client.put("/admin/v1/organizers/chat/ciba", headers=ADMIN, json={
        "deliveryMode": "ping", "notificationEndpoint": endpoint})
    assert (response.status_code, response.json()["code"]) == (
        400, "INVALID_NOTIFICATION_ENDPOINT")
    assert (await bc_authorize(h)).status_code == 200  # no notification token needed
