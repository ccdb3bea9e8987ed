"""Organizers authenticate with private_key_jwt; a refused client is RFC 6749 ``invalid_client``
(401), a refused access token a 401 with a stable code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from operator_harness import BASE_URL, Harness, HarnessFactory

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import generate_key
from numident.core.clock import FakeClock, SystemClock
from numident.trust.tokens import AccessTokenIssuer

pytestmark = pytest.mark.anyio
TOKEN_URL = f"{BASE_URL}/oauth2/token"


async def token_error(h: Harness, form: dict[str, str]) -> tuple[int, str, str]:
    """Status, RFC 6749 error code and description of a refused token request."""
    response = await h.client.post("/oauth2/token", data=form)
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert response.headers["cache-control"] == "no-store"
    assert "www-authenticate" not in response.headers
    return response.status_code, body["error"], body["error_description"]


async def test_token_request_with_a_valid_assertion_gets_a_bearer_token(
        make_gateway: HarnessFactory) -> None:
    """A signed assertion buys a short-lived bearer token for the identification scope."""
    h: Harness = await make_gateway()
    assertion = make_client_assertion(h.keys["chat"], "chat", TOKEN_URL, SystemClock())
    response = await h.client.post("/oauth2/token", data=token_request_form(assertion))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "identification"
    assert response.headers["cache-control"] == "no-store"


async def test_replayed_assertion_is_refused(make_gateway: HarnessFactory) -> None:
    """An assertion works once; its jti is remembered until it expires."""
    h: Harness = await make_gateway()
    form = token_request_form(make_client_assertion(h.keys["chat"], "chat", TOKEN_URL,
                                                    SystemClock()))
    assert (await h.client.post("/oauth2/token", data=form)).status_code == 200
    assert (await token_error(h, form))[:2] == (401, "invalid_client")


async def test_forged_assertion_is_refused(make_gateway: HarnessFactory) -> None:
    """An assertion signed with a key the organizer never registered is refused."""
    h: Harness = await make_gateway()
    forged = make_client_assertion(generate_key(), "chat", TOKEN_URL, SystemClock())
    assert (await token_error(h, token_request_form(forged)))[:2] == (401, "invalid_client")


async def test_assertion_for_another_audience_is_refused(make_gateway: HarnessFactory) -> None:
    """An assertion made for another gateway's token endpoint cannot be used here."""
    h: Harness = await make_gateway()
    other = make_client_assertion(h.keys["chat"], "chat", "https://other.example/oauth2/token",
                                  SystemClock())
    status, error, description = await token_error(h, token_request_form(other))
    assert (status, error) == (401, "invalid_client")
    assert "audience" in description


async def test_expired_assertion_is_refused(make_gateway: HarnessFactory) -> None:
    """An assertion whose exp has passed is refused."""
    h: Harness = await make_gateway()
    past = FakeClock(SystemClock().now() - timedelta(minutes=10))
    old = make_client_assertion(h.keys["chat"], "chat", TOKEN_URL, past)
    status, error, description = await token_error(h, token_request_form(old))
    assert (status, error, description) == (401, "invalid_client",
                                            "client assertion has expired")


async def test_unknown_client_and_missing_fields_are_refused(make_gateway: HarnessFactory
                                                             ) -> None:
    """Unknown clients, missing assertions and other grant types are refused."""
    h: Harness = await make_gateway()
    stranger = make_client_assertion(generate_key(), "stranger", TOKEN_URL, SystemClock())
    assert (await token_error(h, token_request_form(stranger)))[:2] == (401, "invalid_client")
    assert (await token_error(h, {"grant_type": "client_credentials"}))[:2] == (
        401, "invalid_client")
    assert (await token_error(h, {"grant_type": "password"}))[:2] == (
        400, "unsupported_grant_type")
    garbage = token_request_form("not.a.jwt")
    assert (await token_error(h, garbage))[:2] == (401, "invalid_client")


async def test_api_refuses_missing_forged_and_expired_tokens(make_gateway: HarnessFactory
                                                             ) -> None:
    """The API answers 401 without a token, with a forged one, and after expiry."""
    clock = FakeClock(SystemClock().now())
    h: Harness = await make_gateway(clock=clock)
    body = {"phoneNumber": "+79161234567", "identificationCode": "u"}
    missing = await h.client.post("/identification/v1/requests", json=body)
    forged = await h.client.post("/identification/v1/requests", json=body,
                                 headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."})
    headers = await h.auth()
    fresh = await h.client.post("/identification/v1/requests", json=body, headers=headers)
    clock.advance(601)
    expired = await h.client.post("/identification/v1/requests", json=body, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (401, "MISSING_TOKEN")
    assert (forged.status_code, forged.json()["code"]) == (401, "INVALID_TOKEN")
    assert fresh.status_code == 200
    assert (expired.status_code, expired.json()["code"]) == (401, "TOKEN_EXPIRED")
    assert missing.headers["www-authenticate"].startswith("Bearer")


async def test_token_of_another_gateway_is_refused(make_gateway: HarnessFactory) -> None:
    """A token signed by another gateway's key is not accepted here."""
    h: Harness = await make_gateway()
    foreign = AccessTokenIssuer(generate_key(), issuer=BASE_URL, audience=BASE_URL,
                                clock=SystemClock()).issue("chat", "identification")
    response = await h.client.post(
        "/identification/v1/requests", headers={"Authorization": f"Bearer {foreign.access_token}"},
        json={"phoneNumber": "+79161234567", "identificationCode": "u"})
    assert (response.status_code, response.json()["code"]) == (401, "INVALID_TOKEN")
