"""Number Verification: the device's number, from three-legged tokens the network vouches for."""

from __future__ import annotations

import hashlib

import pytest
from joserfc import jwt
from operator_harness import ADMIN, REDIRECT_URI, Harness, HarnessFactory

from numident.client.assertions import ASSERTION_TYPE, token_request_form

pytestmark = pytest.mark.anyio
VERIFY, SHARE = "number-verification:verify", "number-verification:device-phone-number:read"
LINE, OTHER = "+79161234567", "+79031112233"


async def gateway(make_gateway: HarnessFactory) -> Harness:
    h: Harness = await make_gateway(register=False)
    h.register("chat", scopes=[VERIFY, SHARE, "identification"])
    return h


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "x-correlator": "nv-1"}


async def test_verify_compares_the_plain_and_the_hashed_number_with_the_device(
        make_gateway: HarnessFactory) -> None:
    """True for the device's own number, false for another, in either form."""
    h = await gateway(make_gateway)
    cases = [({"phoneNumber": LINE}, True), ({"phoneNumber": OTHER}, False),
             ({"hashedPhoneNumber": hashlib.sha256(LINE.encode()).hexdigest().upper()}, True),
             ({"hashedPhoneNumber": hashlib.sha256(OTHER.encode()).hexdigest()}, False)]
    for body, expected in cases:
        headers = bearer(await h.line_token(LINE, VERIFY))  # each token serves one call
        response = await h.client.post("/number-verification/vwip/verify", json=body,
                                       headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"devicePhoneNumberVerified": expected}
        assert response.headers["x-correlator"] == "nv-1"


async def test_device_phone_number_is_the_token_line(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    sim = await h.line_token(OTHER, SHARE, authentication="sim")
    response = await h.client.get("/number-verification/vwip/device-phone-number",
                                  headers=bearer(sim))
    assert response.status_code == 200
    assert response.json() == {"devicePhoneNumber": OTHER}


@pytest.mark.parametrize("body", [{}, {"phoneNumber": LINE, "hashedPhoneNumber": "a" * 64},
                                  {"phoneNumber": "79161234567"}, {"hashedPhoneNumber": "xyz"},
                                  {"phoneNumber": LINE, "extra": 1}, None])
async def test_verify_refuses_bodies_outside_the_schema(make_gateway: HarnessFactory,
                                                        body: object) -> None:
    h = await gateway(make_gateway)
    headers = bearer(await h.line_token(LINE, VERIFY))
    response = await h.client.post("/number-verification/vwip/verify", headers=headers,
                                   **({"json": body} if body is not None else {}))
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"


async def test_lines_not_authenticated_by_the_mobile_network_are_refused(
        make_gateway: HarnessFactory) -> None:
    """A session authenticated by a one-time code does not prove the device's line."""
    h = await gateway(make_gateway)

    async def otp() -> dict[str, str]:
        return bearer(await h.line_token(LINE, f"{VERIFY} {SHARE}", authentication="otp"))

    for response in (
            await h.client.post("/number-verification/vwip/verify", headers=await otp(),
                                json={"phoneNumber": LINE}),
            await h.client.get("/number-verification/vwip/device-phone-number",
                               headers=await otp())):
        assert response.status_code == 403
        assert response.json()["code"] == \
            "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK"


async def test_two_legged_and_wrong_scope_tokens_are_refused(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    two_legged = bearer(await h.token(scope=VERIFY))
    response = await h.client.post("/number-verification/vwip/verify", headers=two_legged,
                                   json={"phoneNumber": LINE})
    assert (response.status_code, response.json()["code"]) == (403, "PERMISSION_DENIED")
    share_only = bearer(await h.line_token(LINE, SHARE))
    response = await h.client.post("/number-verification/vwip/verify", headers=share_only,
                                   json={"phoneNumber": LINE})
    assert (response.status_code, response.json()["code"]) == (403, "PERMISSION_DENIED")


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_missing_or_bad_tokens_are_unauthenticated(make_gateway: HarnessFactory,
                                                         authorization: str | None) -> None:
    h = await gateway(make_gateway)
    headers = {"Authorization": authorization} if authorization else {}
    response = await h.client.get("/number-verification/vwip/device-phone-number",
                                  headers=headers)
    assert response.status_code == 401
    assert response.json() == {"status": 401, "code": "UNAUTHENTICATED",
                               "message": response.json()["message"]}
    assert response.json()["message"]


async def test_a_number_verification_token_serves_a_single_call(
        make_gateway: HarnessFactory) -> None:
    """CAMARA: a token with a Number Verification scope is "restricted to a single API call";
    its second use is refused, whichever operation it calls."""
    h = await gateway(make_gateway)
    headers = bearer(await h.line_token(LINE, f"{VERIFY} {SHARE}"))
    first = await h.client.post("/number-verification/vwip/verify", headers=headers,
                                json={"phoneNumber": LINE})
    again = await h.client.post("/number-verification/vwip/verify", headers=headers,
                                json={"phoneNumber": LINE})
    other = await h.client.get("/number-verification/vwip/device-phone-number",
                               headers=headers)
    assert first.json() == {"devicePhoneNumberVerified": True}
    for refused in (again, other):
        assert (refused.status_code, refused.json()["code"]) == (401, "UNAUTHENTICATED")
        assert "single" in refused.json()["message"]


async def test_a_number_verification_token_is_refused_by_every_replica_after_use(
        make_gateway: HarnessFactory) -> None:
    """The spent token is recorded in the shared database, not in one process."""
    h = await gateway(make_gateway)
    replica: Harness = await make_gateway(register=False)
    headers = bearer(await h.line_token(LINE, VERIFY))
    first = await h.client.post("/number-verification/vwip/verify", headers=headers,
                                json={"phoneNumber": LINE})
    assert first.status_code == 200
    # Both gateways read one home, so one signing key, and one database.
    second = await replica.client.post("/number-verification/vwip/verify", headers=headers,
                                       json={"phoneNumber": LINE})
    assert (second.status_code, second.json()["code"]) == (401, "UNAUTHENTICATED")


async def test_number_verification_tokens_live_at_most_300_seconds_without_refresh(
        make_gateway: HarnessFactory) -> None:
    """CAMARA: at most 300 s and no refresh token, while other tokens keep the gateway's
    lifetime (600 s here)."""
    h = await gateway(make_gateway)
    session = "nv-session"
    await h.client.put(f"/admin/v1/network-sessions/{session}", headers=ADMIN,
                       json={"phoneNumber": LINE, "authentication": "network"})
    code = await h.authorization_code(session, VERIFY)
    response = await h.client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": h.assertion()})
    body = response.json()
    assert (body["expires_in"], body["scope"]) == (300, VERIFY)
    assert "refresh_token" not in body
    key = h.app.state.signing_key
    claims = jwt.decode(body["access_token"], key.jose, algorithms=[key.algorithm]).claims
    assert claims["exp"] - claims["iat"] == 300
    identification = (await h.client.post("/oauth2/token", data=token_request_form(
        h.assertion(), "identification"))).json()
    assert identification["expires_in"] == 600
    assert "refresh_token" not in identification
    metadata = (await h.client.get("/.well-known/oauth-authorization-server")).json()
    assert "refresh_token" not in metadata["grant_types_supported"]


async def test_each_api_serves_its_own_openapi_document(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    document = (await h.client.get("/number-verification/vwip/openapi.json")).json()
    assert set(document["paths"]) == {"/number-verification/vwip/verify",
                                      "/number-verification/vwip/device-phone-number"}
    assert ADMIN  # the admin credential is the harness's; sessions were set through it above
