"""Three-legged tokens: the authorization-code flow bound to the device's network session."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import Request
from joserfc import jwt
from operator_harness import ADMIN, REDIRECT_URI, SESSION_HEADER, Harness, HarnessFactory

from numident.client.assertions import ASSERTION_TYPE
from numident.client.keys import JWS_REGISTRY
from numident.core.clock import FakeClock
from numident.operator.authorization import Authentication, NetworkSession, s256

pytestmark = pytest.mark.anyio
SCOPES = ["identification", "number-verification:verify"]
LINE = "+79161234567"


async def gateway(make_gateway: HarnessFactory, **options: object) -> Harness:
    h: Harness = await make_gateway(register=False, **options)
    h.register("chat", scopes=SCOPES)
    response = await h.client.put("/admin/v1/network-sessions/s-1", headers=ADMIN,
                                  json={"phoneNumber": "+7 916 123-45-67"})
    assert response.status_code == 204
    return h


def decoded(h: Harness, token: str) -> dict[str, object]:
    key = h.app.state.signing_key
    return dict(jwt.decode(token, key.jose, algorithms=[key.algorithm]).claims)


def redeem_form(h: Harness, code: str, name: str = "chat",
                redirect_uri: str = REDIRECT_URI) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": h.assertion(name)}


async def authorize(h: Harness, session: str | None = "s-1", **params: str) -> dict[str, str]:
    query = {"response_type": "code", "client_id": "chat", "redirect_uri": REDIRECT_URI,
             "scope": "number-verification:verify", "state": "xyz", **params}
    response = await h.client.get("/oauth2/authorize", params=query,
                                  headers={SESSION_HEADER: session} if session else {})
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def test_code_buys_a_token_bound_to_the_session_line(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    answer = await authorize(h)
    assert answer["state"] == "xyz"
    response = await h.client.post("/oauth2/token", data=redeem_form(h, answer["code"]))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "number-verification:verify"
    claims = decoded(h, response.json()["access_token"])
    assert (claims["sub"], claims["phone_number"], claims["amr"], claims["client_id"]) == (
        LINE, LINE, ["network"], "chat")
    verified = h.app.state.authenticator.caller(
        f"Bearer {response.json()['access_token']}", "number-verification:verify")[1]
    assert (verified.phone_number, verified.amr) == (LINE, frozenset({"network"}))


async def test_a_code_is_spent_once_by_its_own_client_and_redirect(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    h.register("bank", scopes=SCOPES)
    code = (await authorize(h))["code"]
    for form in (redeem_form(h, code, name="bank"),
                 redeem_form(h, code, redirect_uri="https://chat.example/other"),
                 redeem_form(h, "never-issued")):
        response = await h.client.post("/oauth2/token", data=form)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert (await h.client.post("/oauth2/token", data=redeem_form(h, code))).status_code == 200
    again = await h.client.post("/oauth2/token", data=redeem_form(h, code))
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


async def test_a_code_expires(make_gateway: HarnessFactory) -> None:
    clock = FakeClock()
    h = await gateway(make_gateway, clock=clock)
    code = (await authorize(h))["code"]
    clock.advance(61)
    response = await h.client.post("/oauth2/token", data=redeem_form(h, code))
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("params", "session", "error"), [
    ({"response_type": "token"}, "s-1", "unsupported_response_type"),
    ({"scope": "sim-swap:check"}, "s-1", "invalid_scope"),
    ({}, None, "access_denied"),
    ({}, "unknown-session", "access_denied"),
])
async def test_refusals_after_the_client_is_known_go_back_to_its_redirect_uri(
        make_gateway: HarnessFactory, params: dict[str, str], session: str | None,
        error: str) -> None:
    h = await gateway(make_gateway)
    answer = await authorize(h, session, **params)
    assert (answer["error"], answer["state"]) == (error, "xyz")
    assert "code" not in answer


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"client_id": "nobody"}, 401, "invalid_client"),
    ({"redirect_uri": "https://evil.example/steal"}, 400, "invalid_request"),
])
async def test_unknown_clients_and_redirects_are_never_redirected_to(
        make_gateway: HarnessFactory, params: dict[str, str], status: int, code: str) -> None:
    h = await gateway(make_gateway)
    query = {"response_type": "code", "client_id": "chat", "redirect_uri": REDIRECT_URI,
             "scope": "identification", **params}
    response = await h.client.get("/oauth2/authorize", params=query,
                                  headers={SESSION_HEADER: "s-1"})
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"
    assert "location" not in response.headers
    assert "www-authenticate" not in response.headers


async def test_sessions_are_keyed_by_client_address_without_an_enrichment_header(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={})
    await h.client.put("/admin/v1/network-sessions/127.0.0.1", headers=ADMIN,
                       json={"phoneNumber": "+79031112233", "authentication": "sim"})
    code = (await authorize(h, session="s-1"))["code"]  # the header is not trusted here
    token = (await h.client.post("/oauth2/token", data=redeem_form(h, code))).json()
    claims = decoded(h, token["access_token"])
    assert (claims["phone_number"], claims["amr"]) == ("+79031112233", ["sim"])


async def test_client_credentials_get_only_registered_scopes(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    assert await h.token(scope="identification number-verification:verify")
    response = await h.client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": h.assertion(), "scope": "identification sim-swap:check"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    assert "sim-swap:check" in response.json()["error_description"]


async def test_network_sessions_are_managed_by_staff_only(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    path = "/admin/v1/network-sessions/s-2"
    anonymous = await h.client.put(path, json={"phoneNumber": LINE})
    assert anonymous.status_code == 401
    bad = await h.client.put(path, headers=ADMIN, json={"phoneNumber": LINE,
                                                        "authentication": "password"})
    assert bad.status_code == 400
    assert (await h.client.delete(path, headers=ADMIN)).status_code == 404
    assert (await h.client.delete("/admin/v1/network-sessions/s-1",
                                  headers=ADMIN)).status_code == 204
    assert (await authorize(h))["error"] == "access_denied"


async def test_metadata_names_the_endpoints(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    document = (await h.client.get("/.well-known/oauth-authorization-server")).json()
    assert document["issuer"] == h.gateway.notice_source
    assert document["authorization_endpoint"] == f"{document['issuer']}/oauth2/authorize"
    assert document["token_endpoint"] == f"{document['issuer']}/oauth2/token"
    assert document["grant_types_supported"] == ["authorization_code", "client_credentials",
                                                 "urn:openid:params:grant-type:ciba"]
    jwks = (await h.client.get("/.well-known/jwks.json")).json()
    assert jwks["keys"][0]["kid"] == h.app.state.signing_key.kid


VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_is_the_rfc_7636_transform() -> None:
    assert s256(VERIFIER) == CHALLENGE


async def test_pkce_binds_the_code_to_the_client_secret_verifier(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    pkce = {"code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    code = (await authorize(h, **pkce))["code"]
    for verifier in (None, "x" * 43, VERIFIER[:-1] + "Y"):
        form = redeem_form(h, code) | ({"code_verifier": verifier} if verifier else {})
        response = await h.client.post("/oauth2/token", data=form)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    proven = await h.client.post("/oauth2/token",
                                 data=redeem_form(h, code) | {"code_verifier": VERIFIER})
    assert proven.status_code == 200, proven.text
    without = (await authorize(h))["code"]  # no challenge: a verifier is a downgrade attempt
    response = await h.client.post("/oauth2/token",
                                   data=redeem_form(h, without) | {"code_verifier": VERIFIER})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("pkce", [{"code_challenge": CHALLENGE, "code_challenge_method": "plain"},
                                  {"code_challenge": CHALLENGE},
                                  {"code_challenge": "short", "code_challenge_method": "S256"}])
async def test_only_s256_challenges_are_accepted(make_gateway: HarnessFactory,
                                                 pkce: dict[str, str]) -> None:
    h = await gateway(make_gateway)
    answer = await authorize(h, **pkce)
    assert (answer["error"], answer["state"]) == ("invalid_request", "xyz")


async def test_pkce_can_be_required(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"session_header": SESSION_HEADER,
                                            "require_pkce": True})
    assert (await authorize(h))["error"] == "invalid_request"
    assert "code" in await authorize(h, code_challenge=CHALLENGE, code_challenge_method="S256")


class EnrichedByProxy:
    """An operator's own session source: its proxy puts the line in a header."""

    def session_for(self, request: Request) -> NetworkSession | None:
        line = request.headers.get("x-enriched-msisdn")
        return NetworkSession(line, Authentication.SIM) if line else None


async def test_the_operator_may_plug_in_its_own_session_source(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway(register=False, network_sessions=EnrichedByProxy())
    h.register("chat", scopes=SCOPES)
    response = await h.client.get("/oauth2/authorize", headers={
        "x-enriched-msisdn": "+79031112233", SESSION_HEADER: "s-1"}, params={
        "response_type": "code", "client_id": "chat", "redirect_uri": REDIRECT_URI,
        "scope": "number-verification:verify"})
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    token = (await h.client.post("/oauth2/token", data=redeem_form(h, code))).json()
    claims = decoded(h, token["access_token"])
    assert (claims["phone_number"], claims["amr"]) == ("+79031112233", ["sim"])


async def openid_tokens(h: Harness, name: str = "chat", nonce: str | None = "n-0S6_WzA2Mj"
                        ) -> dict[str, object]:
    params = {"scope": "openid number-verification:verify", "client_id": name}
    if nonce is not None:
        params["nonce"] = nonce
    code = (await authorize(h, **params))["code"]
    response = await h.client.post("/oauth2/token", data=redeem_form(h, code, name=name))
    assert response.status_code == 200, response.text
    return dict(response.json())


def id_claims(h: Harness, id_token: object) -> dict[str, object]:
    key = h.app.state.signing_key
    token = jwt.decode(str(id_token), key.jose, algorithms=["EdDSA"], registry=JWS_REGISTRY)
    assert (token.header["alg"], token.header["kid"]) == ("EdDSA", key.kid)
    return dict(token.claims)


async def test_openid_adds_an_id_token_for_the_client_with_its_nonce(
        make_gateway: HarnessFactory) -> None:
    """OpenID Connect Core: signed by the gateway key, iss the issuer, aud the client, the
    authorization request's nonce echoed, and the access token still bound to the line."""
    h = await gateway(make_gateway)
    body = await openid_tokens(h)
    claims = id_claims(h, body["id_token"])
    assert (claims["iss"], claims["aud"], claims["azp"], claims["nonce"]) == (
        h.gateway.notice_source, "chat", "chat", "n-0S6_WzA2Mj")
    assert claims["amr"] == ["network"]
    assert 0 < int(str(claims["exp"])) - int(str(claims["iat"])) <= 300
    assert body["scope"] == "openid number-verification:verify"
    assert decoded(h, str(body["access_token"]))["phone_number"] == LINE


async def test_the_id_token_subject_is_pairwise_and_never_the_number(
        make_gateway: HarnessFactory) -> None:
    """The same line has one stable sub per organizer, a different one for another organizer,
    and no sub contains the number."""
    h = await gateway(make_gateway)
    h.register("bank", scopes=SCOPES)
    first = id_claims(h, (await openid_tokens(h))["id_token"])["sub"]
    again = id_claims(h, (await openid_tokens(h, nonce=None))["id_token"])
    other = id_claims(h, (await openid_tokens(h, name="bank"))["id_token"])["sub"]
    assert first == again["sub"]
    assert "nonce" not in again
    assert first != other
    for sub in (first, other):
        assert LINE.lstrip("+") not in str(sub)
        assert len(str(sub)) == 43


async def test_without_openid_there_is_no_id_token(make_gateway: HarnessFactory) -> None:
    """A plain three-legged flow answers with the access token alone."""
    h = await gateway(make_gateway)
    code = (await authorize(h, nonce="ignored"))["code"]
    body = (await h.client.post("/oauth2/token", data=redeem_form(h, code))).json()
    assert "id_token" not in body
    assert body["scope"] == "number-verification:verify"


async def test_an_oversized_nonce_goes_back_as_invalid_request(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    answer = await authorize(h, scope="openid identification", nonce="n" * 513)
    assert (answer["error"], answer["state"]) == ("invalid_request", "xyz")
    assert "code" not in answer
