"""``POST /oauth2/token`` as RFC 6749, RFC 7523 and draft-ietf-oauth-rfc7523bis describe it:
the audiences and algorithms every maintained client library sends, and RFC 6749 section 5.2
errors for everything else."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from operator_harness import BASE_URL, REDIRECT_URI, Harness, HarnessFactory

from numident.client.assertions import ASSERTION_TYPE
from numident.client.keys import JWS_REGISTRY, PrivateKey, generate_key
from numident.core.clock import FakeClock
from numident.operator import organizers
from numident.operator.tables import used_assertions

pytestmark = pytest.mark.anyio
TOKEN_URL = f"{BASE_URL}/oauth2/token"


def assertion(key: PrivateKey, *, alg: str | None = None, client: str = "chat",
              **claims: Any) -> str:
    """An assertion as a third-party library makes it: ``alg`` and the claims are its own."""
    now = int(time.time())
    body = {"iss": client, "sub": client, "aud": BASE_URL, "iat": now, "exp": now + 60,
            "jti": str(uuid.uuid4()), **claims}
    alg = alg or key.algorithm
    return jwt.encode({"alg": alg, "kid": key.kid}, body, key.jose, algorithms=[alg],
                      registry=JWS_REGISTRY)


def form(client_assertion: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion, **extra}


async def refused(h: Harness, data: dict[str, str] | str) -> tuple[int, str]:
    """Status and error of a refused request, after checking the RFC 6749 section 5.2 shape."""
    if isinstance(data, str):
        response = await h.client.post("/oauth2/token", content=data, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
    else:
        response = await h.client.post("/oauth2/token", data=data)
    body = response.json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error_description"]
    assert response.headers["cache-control"] == "no-store"
    assert "www-authenticate" not in response.headers
    return response.status_code, body["error"]


async def granted(h: Harness, data: dict[str, str]) -> dict[str, Any]:
    response = await h.client.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
async def test_ed25519_clients_may_sign_with_eddsa_or_ed25519(make_gateway: HarnessFactory,
                                                             alg: str) -> None:
    """PyJWT, jwcrypto, node jose and nimbus say ``EdDSA`` (RFC 8037); RFC 9864 says
    ``Ed25519``: an Ed25519 key gets a token under either name."""
    h: Harness = await make_gateway()
    body = await granted(h, form(assertion(h.keys["chat"], alg=alg)))
    assert (body["token_type"], body["scope"]) == ("Bearer", "identification")


async def test_p256_clients_sign_with_es256(make_gateway: HarnessFactory) -> None:
    """An organizer registered with a P-256 key gets a token with an ES256 assertion only."""
    h: Harness = await make_gateway(register=False)
    key = h.register("chat", key=generate_key("ES256"))
    assert (await granted(h, form(assertion(key))))["token_type"] == "Bearer"
    assert await refused(h, form(assertion(generate_key(), alg="EdDSA"))) == (
        401, "invalid_client")


@pytest.mark.parametrize("audience", [BASE_URL, TOKEN_URL, [TOKEN_URL, "https://x.example"]])
async def test_the_issuer_and_the_token_endpoint_are_accepted_audiences(
        make_gateway: HarnessFactory, audience: object) -> None:
    """rfc7523bis's issuer identifier, and RFC 7523's token endpoint URL, by default."""
    h: Harness = await make_gateway()
    assert await granted(h, form(assertion(h.keys["chat"], aud=audience)))


async def test_strict_audience_accepts_only_the_issuer(make_gateway: HarnessFactory) -> None:
    """``operator.oauth.strict_audience`` follows rfc7523bis: the issuer, as the sole value."""
    h: Harness = await make_gateway(oauth={"strict_audience": True})
    key = h.keys["chat"]
    assert await granted(h, form(assertion(key, aud=BASE_URL)))
    for audience in (TOKEN_URL, [BASE_URL, TOKEN_URL], "https://other.example"):
        assert await refused(h, form(assertion(key, aud=audience))) == (401, "invalid_client")


async def test_an_hour_long_assertion_is_accepted_once_on_every_replica(
        make_gateway: HarnessFactory) -> None:
    """authlib's default assertion (3600 s) gets a token; its jti is kept in the database until
    its exp, so a second gateway on the same database refuses the replay."""
    h: Harness = await make_gateway()
    replica: Harness = await make_gateway(register=False)
    long_lived = h.assertion(audience=BASE_URL, lifetime=3600)
    assert await granted(h, form(long_lived))
    assert await refused(replica, form(long_lived)) == (401, "invalid_client")
    with h.gateway.engine.connect() as conn:
        [expires_at] = conn.execute(used_assertions.select()).all()[0][1:]
    assert 3600 <= (expires_at - h.clock.now()).total_seconds() <= 3600 + 31
    assert await refused(h, form(h.assertion(lifetime=3601))) == (401, "invalid_client")


@pytest.mark.parametrize(("data", "expected"), [
    ({}, (400, "invalid_request")),
    ({"grant_type": "password"}, (400, "unsupported_grant_type")),
    ({"grant_type": "client_credentials"}, (401, "invalid_client")),
    ({"grant_type": "client_credentials", "client_assertion_type": "other",
      "client_assertion": "x"}, (401, "invalid_client")),
    (form("not.a.jwt"), (401, "invalid_client")),
    (form("é.é.é"), (401, "invalid_client")),
    (form("eyJhbGciOiJub25lIn0.e30."), (401, "invalid_client")),
    (form("A" * 100_000), (401, "invalid_client")),
    ("grant_type=client_credentials&grant_type=client_credentials", (400, "invalid_request")),
    ("%ff%fe=\x00&grant_type", (400, "invalid_request")),
])
async def test_malformed_requests_get_the_rfc_6749_error(
        make_gateway: HarnessFactory, data: dict[str, str] | str,
        expected: tuple[int, str]) -> None:
    """Missing, repeated, malformed and oversized parameters: the RFC's error, never a 500."""
    h: Harness = await make_gateway()
    assert await refused(h, data) == expected


async def test_assertions_with_wrong_claims_are_invalid_client(
        make_gateway: HarnessFactory) -> None:
    """Expired, replayed, foreign-signed, wrong-alg and wrong-subject assertions."""
    h: Harness = await make_gateway()
    key = h.keys["chat"]
    now = int(time.time())
    replayed = assertion(key)
    await granted(h, form(replayed))
    for bad in (assertion(key, iat=now - 600, exp=now - 300), replayed,
                assertion(generate_key()), assertion(generate_key("ES256")),
                assertion(key, sub="bank"), assertion(key, client="stranger")):
        assert await refused(h, form(bad)) == (401, "invalid_client")
    assert await refused(h, form(assertion(key), client_id="bank")) == (401, "invalid_client")


async def test_scope_and_grant_refusals(make_gateway: HarnessFactory) -> None:
    """An unregistered scope is invalid_scope; a bad or missing code invalid_grant or
    invalid_request."""
    h: Harness = await make_gateway()
    key = h.keys["chat"]
    assert await refused(h, form(assertion(key), scope="kyc-match:match")) == (
        400, "invalid_scope")
    code_grant = {"grant_type": "authorization_code", "client_assertion_type": ASSERTION_TYPE,
                  "redirect_uri": REDIRECT_URI}
    assert await refused(h, {**code_grant, "client_assertion": assertion(key),
                             "code": "never-issued"}) == (400, "invalid_grant")
    assert await refused(h, {**code_grant, "client_assertion": assertion(key)}) == (
        400, "invalid_request")


async def test_resource_apis_keep_the_camara_error_body(make_gateway: HarnessFactory) -> None:
    """Only the OAuth endpoints speak RFC 6749; the API answers with its own error body and a
    Bearer challenge."""
    h: Harness = await make_gateway()
    response = await h.client.post("/identification/v1/requests",
                                   json={"phoneNumber": "+79161234567", "identificationCode": "u"})
    assert response.status_code == 401
    assert set(response.json()) == {"status", "code", "message"}
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_without_public_url_the_issuer_is_where_the_server_listens(
        make_gateway: HarnessFactory) -> None:
    """No ``public_url``: issuer, endpoints and the accepted audience follow ``serve``'s
    host and port."""
    listening = "http://127.0.0.1:18455"
    h: Harness = await make_gateway(public_url=None, listen_url=listening)
    metadata = (await h.client.get("/.well-known/oauth-authorization-server")).json()
    assert (metadata["issuer"], metadata["token_endpoint"]) == (
        listening, f"{listening}/oauth2/token")
    body = await granted(h, form(h.assertion(audience=listening)))
    key = h.app.state.signing_key
    claims = jwt.decode(body["access_token"], key.jose, algorithms=[key.algorithm]).claims
    assert claims["iss"] == listening
    assert await refused(h, form(h.assertion(audience=BASE_URL))) == (401, "invalid_client")


async def test_discovery_documents_agree_on_issuer_grants_and_algorithms(
        make_gateway: HarnessFactory) -> None:
    """RFC 8414 metadata and OpenID Connect discovery are one document, with what clients
    need to pick their settings."""
    h: Harness = await make_gateway()
    oauth = (await h.client.get("/.well-known/oauth-authorization-server")).json()
    openid = (await h.client.get("/.well-known/openid-configuration")).json()
    assert oauth == openid
    assert openid["issuer"] == BASE_URL
    assert openid["jwks_uri"] == f"{BASE_URL}/.well-known/jwks.json"
    assert openid["grant_types_supported"] == ["authorization_code", "client_credentials",
                                               "urn:openid:params:grant-type:ciba"]
    assert openid["backchannel_authentication_endpoint"] == f"{BASE_URL}/oauth2/bc-authorize"
    assert openid["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert openid["token_endpoint_auth_signing_alg_values_supported"] == [
        "EdDSA", "Ed25519", "ES256"]
    assert openid["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert openid["subject_types_supported"] == ["pairwise"]
    assert {"openid", "identification", "number-verification:verify"} <= set(
        openid["scopes_supported"])
    assert openid["response_types_supported"] == ["code"]


async def test_the_jwks_holds_the_signing_key_for_every_library(
        make_gateway: HarnessFactory) -> None:
    """RFC 7517 / 8037: kty OKP, crv Ed25519, kid and use; no alg to disagree about."""
    h: Harness = await make_gateway()
    [jwk] = (await h.client.get("/.well-known/jwks.json")).json()["keys"]
    key = h.app.state.signing_key
    assert (jwk["kty"], jwk["crv"], jwk["kid"], jwk["use"]) == ("OKP", "Ed25519", key.kid,
                                                                "sig")
    assert "alg" not in jwk
    assert "d" not in jwk


async def test_error_descriptions_keep_to_the_characters_rfc_6749_allows(
        make_gateway: HarnessFactory) -> None:
    """A description that quotes client input (an unknown client id with a quote, a
    backslash, a newline and Cyrillic) holds only %x20-21 / %x23-5B / %x5D-7E."""
    h: Harness = await make_gateway()
    response = await h.client.post("/oauth2/token", data=form(
        assertion(generate_key(), client='чат"\\\nx')))
    description = response.json()["error_description"]
    assert response.status_code == 401
    assert description.startswith("unknown client")
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description), description


async def test_a_key_changed_on_another_replica_takes_effect_within_a_second(
        make_gateway: HarnessFactory) -> None:
    """A registration changed in the shared database (by another replica, or the CLI) is read
    afresh within a second: the new key gets tokens and the old one, revoked, does not."""
    clock = FakeClock(datetime.now(UTC))
    h: Harness = await make_gateway(clock=clock)
    old = h.keys["chat"]
    await granted(h, form(assertion(old)))
    new = generate_key()
    organizers.add_organizer(h.app.state.gateway.engine, "chat", "http://127.0.0.1:9/n",
                             json.dumps(new.public_jwk()), clock.now(), replace=True)
    clock.advance(1.5)
    await granted(h, form(assertion(new)))
    assert await refused(h, form(assertion(old))) == (401, "invalid_client")
