"""Python OAuth and JOSE libraries, used as their documentation shows, get tokens from a gateway
process and call the identification API with them; their JWKS readers find its key."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from interop_gateway import LINE, REDIRECT_URI, Gateway
from joserfc import jwk as joserfc_jwk
from joserfc import jwt as joserfc_jwt
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

pytestmark = pytest.mark.interop
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NV_SCOPE = "number-verification:verify"
# authlib signs with joserfc, which warns on every use of the name EdDSA (RFC 9864).
QUIET_EDDSA = pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")


def metadata(gateway: Gateway) -> dict[str, Any]:
    """OpenID discovery, as a client starts: everything else comes from this document."""
    response = httpx2.get(f"{gateway.url}/.well-known/openid-configuration", timeout=30)
    assert response.status_code == 200
    document = dict(response.json())
    assert document["issuer"] == gateway.url
    return document


def claims_for(client: str, audience: str, lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": client, "sub": client, "aud": audience, "iat": now, "exp": now + lifetime,
            "jti": str(uuid.uuid4())}


def token_request(endpoint: str, assertion: str, **extra: str) -> dict[str, Any]:
    response = httpx2.post(endpoint, timeout=30, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


def pem(public_key: ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def assert_identifies(gateway: Gateway, access_token: str) -> None:
    answer = gateway.identify(access_token, f"user-{uuid.uuid4().hex[:8]}")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["phoneNumber"], answer.json()["result"]) == (LINE, "confirmed")


def authorization_code(gateway: Gateway, client: str, nonce: str) -> str:
    """The front channel from a device on the line: its address is its network session."""
    gateway.admin("PUT", "/network-sessions/127.0.0.1",
                  {"phoneNumber": LINE, "authentication": "network"})
    query = urlencode({"response_type": "code", "client_id": client, "state": "st",
                       "redirect_uri": REDIRECT_URI, "scope": f"openid {NV_SCOPE}",
                       "nonce": nonce})
    response = httpx2.get(f"{metadata(gateway)['authorization_endpoint']}?{query}", timeout=30)
    assert response.status_code == 302, response.text
    answer = parse_qs(urlsplit(response.headers["location"]).query)
    assert answer["state"] == ["st"], answer
    return answer["code"][0]


def code_tokens(gateway: Gateway, client: str, assertion: str, nonce: str) -> dict[str, Any]:
    code = authorization_code(gateway, client, nonce)
    response = httpx2.post(metadata(gateway)["token_endpoint"], timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert "refresh_token" not in body
    return body


@pytest.mark.parametrize("kind", ["EdDSA", "ES256"])
def test_pyjwt_assertions_get_a_token(gateway: Gateway, kind: str) -> None:
    """PyJWT signs an Ed25519 key with EdDSA (it has no Ed25519 name) and a P-256 key with
    ES256; ``aud`` is the issuer identifier, as rfc7523bis asks."""
    key = ed25519.Ed25519PrivateKey.generate() if kind == "EdDSA" else \
        ec.generate_private_key(ec.SECP256R1())
    client = gateway.register(f"pyjwt-{kind.lower()}", pem(key.public_key()))
    document = metadata(gateway)
    assertion = pyjwt.encode(claims_for(client, document["issuer"]), key, algorithm=kind)
    body = token_request(document["token_endpoint"], assertion)
    assert (body["token_type"], body["scope"]) == ("Bearer", "identification")
    assert_identifies(gateway, body["access_token"])


def test_pyjwkclient_finds_the_key_that_signs_id_tokens(gateway: Gateway) -> None:
    """PyJWT's ``PyJWKClient`` reads the JWKS, and with it PyJWT verifies the ID token of a
    three-legged flow: issuer, audience, nonce, and a pairwise subject, not the number."""
    key = ed25519.Ed25519PrivateKey.generate()
    client = gateway.register("pyjwt-oidc", pem(key.public_key()),
                              scopes=("identification", NV_SCOPE))
    document = metadata(gateway)
    jwks = pyjwt.PyJWKClient(document["jwks_uri"])
    [signing] = jwks.get_signing_keys()
    assert signing.key_id == httpx2.get(document["jwks_uri"]).json()["keys"][0]["kid"]
    nonce = uuid.uuid4().hex
    tokens = code_tokens(gateway, client, pyjwt.encode(
        claims_for(client, document["issuer"]), key, algorithm="EdDSA"), nonce)
    assert tokens["expires_in"] <= 300
    id_token = tokens["id_token"]
    found = jwks.get_signing_key_from_jwt(id_token)
    claims = pyjwt.decode(id_token, found.key,
                          algorithms=document["id_token_signing_alg_values_supported"],
                          audience=client, issuer=document["issuer"])
    assert claims["nonce"] == nonce
    assert LINE.lstrip("+") not in claims["sub"]
    # The same subscriber seen by another organizer has another subject.
    other_key = ed25519.Ed25519PrivateKey.generate()
    other = gateway.register("pyjwt-oidc-2", pem(other_key.public_key()),
                             scopes=("identification", NV_SCOPE))
    other_tokens = code_tokens(gateway, other, pyjwt.encode(
        claims_for(other, document["issuer"]), other_key, algorithm="EdDSA"), "n-2")
    other_claims = pyjwt.decode(other_tokens["id_token"], found.key, algorithms=["EdDSA"],
                                audience=other, issuer=document["issuer"])
    assert other_claims["sub"] != claims["sub"]


def test_jwcrypto_signs_assertions_and_reads_the_jwks(gateway: Gateway) -> None:
    """jwcrypto makes an EdDSA assertion from its own JWK and verifies the ID token against the
    gateway's JWKS."""
    key = jwcrypto_jwk.JWK.generate(kty="OKP", crv="Ed25519")
    client = gateway.register("jwcrypto", key.export_public(as_dict=True),
                              scopes=("identification", NV_SCOPE))
    document = metadata(gateway)

    def assertion() -> str:
        token = jwcrypto_jwt.JWT(header={"alg": "EdDSA", "kid": key.thumbprint()},
                                 claims=claims_for(client, document["issuer"]))
        token.make_signed_token(key)
        return str(token.serialize())

    assert_identifies(gateway, token_request(document["token_endpoint"],
                                             assertion())["access_token"])
    keys = jwcrypto_jwk.JWKSet.from_json(httpx2.get(document["jwks_uri"]).text)
    nonce = uuid.uuid4().hex
    id_token = code_tokens(gateway, client, assertion(), nonce)["id_token"]
    verified = jwcrypto_jwt.JWT(jwt=id_token, key=keys, algs=["EdDSA"], expected_type="JWS",
                                check_claims={"iss": document["issuer"], "aud": client,
                                              "nonce": nonce, "exp": None})
    assert verified.header  # verified and parsed


def test_joserfc_signs_es256_assertions_and_verifies_access_tokens(gateway: Gateway) -> None:
    """joserfc imports the JWKS as a key set and verifies the gateway's access tokens."""
    key = joserfc_jwk.ECKey.generate_key("P-256")
    client = gateway.register("joserfc", key.as_dict(private=False))
    document = metadata(gateway)
    assertion = joserfc_jwt.encode({"alg": "ES256"}, claims_for(client, document["issuer"]),
                                   key, algorithms=["ES256"])
    access_token = token_request(document["token_endpoint"], assertion)["access_token"]
    keys = joserfc_jwk.KeySet.import_key_set(httpx2.get(document["jwks_uri"]).json())
    decoded = joserfc_jwt.decode(access_token, keys, algorithms=["Ed25519", "EdDSA"])
    assert (decoded.claims["iss"], decoded.claims["client_id"]) == (document["issuer"], client)
    assert_identifies(gateway, access_token)


@QUIET_EDDSA
@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_authlib_private_key_jwt_with_its_defaults_gets_a_token(gateway: Gateway,
                                                               alg: str) -> None:
    """authlib's ``PrivateKeyJWT``: an hour-long assertion with the token endpoint URL as
    audience (RFC 7523 as published); the token works on the API through authlib's client."""
    key = joserfc_jwk.OKPKey.generate_key("Ed25519") if alg == "EdDSA" else \
        joserfc_jwk.ECKey.generate_key("P-256")
    client_id = gateway.register(f"authlib-{alg.lower()}", key.as_dict(private=False))
    token_endpoint = metadata(gateway)["token_endpoint"]
    with OAuth2Client(client_id, key, token_endpoint_auth_method=PrivateKeyJWT(
            token_endpoint, alg=alg), timeout=30) as client:
        token = client.fetch_token(token_endpoint, grant_type="client_credentials")
        assert (token["token_type"], token["scope"]) == ("Bearer", "identification")
        answer = client.post(f"{gateway.url}/identification/v1/requests",
                             json={"phoneNumber": LINE, "identificationCode": "authlib-1"})
    assert (answer.status_code, answer.json()["result"]) == (200, "confirmed")


@QUIET_EDDSA
def test_authlib_sees_a_refused_client_as_invalid_client(gateway: Gateway) -> None:
    """A client the gateway does not know makes authlib raise ``OAuthError`` with
    ``invalid_client``, instead of taking the error body for a token."""
    key = joserfc_jwk.OKPKey.generate_key("Ed25519")
    token_endpoint = metadata(gateway)["token_endpoint"]
    with OAuth2Client("never-registered", key, token_endpoint_auth_method=PrivateKeyJWT(
            token_endpoint, alg="EdDSA"), timeout=30) as client, \
            pytest.raises(OAuthError) as refused:
        client.fetch_token(token_endpoint, grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert refused.value.description


@pytest.mark.parametrize(("assertion", "status", "error"), [
    ("x" * 20_000, 401, "invalid_client"),
    ("a.b.c", 401, "invalid_client"),
    (pyjwt.encode({"iss": "x"}, "k" * 32, algorithm="HS256"), 401, "invalid_client"),
])
def test_bad_assertions_get_the_rfc_error_over_the_wire(gateway: Gateway, assertion: str,
                                                        status: int, error: str) -> None:
    """Oversized, malformed and HMAC assertions: RFC 6749's error from the real server."""
    response = httpx2.post(metadata(gateway)["token_endpoint"], timeout=30, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion})
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert "www-authenticate" not in response.headers


def test_expired_replayed_and_wrong_alg_assertions_are_invalid_client(gateway: Gateway) -> None:
    """PyJWT-made assertions that are expired, replayed, or signed with an algorithm the
    registered key does not use are refused with ``invalid_client``, never a 500."""
    key = ed25519.Ed25519PrivateKey.generate()
    client = gateway.register("pyjwt-refusals", pem(key.public_key()))
    document = metadata(gateway)
    expired = claims_for(client, document["issuer"]) | {"iat": int(time.time()) - 900,
                                                        "exp": int(time.time()) - 600}
    replayed = pyjwt.encode(claims_for(client, document["issuer"]), key, algorithm="EdDSA")
    token_request(document["token_endpoint"], replayed)
    foreign = ec.generate_private_key(ec.SECP256R1())
    for assertion in (pyjwt.encode(expired, key, algorithm="EdDSA"), replayed,
                      pyjwt.encode(claims_for(client, document["issuer"]), foreign,
                                   algorithm="ES256")):
        response = httpx2.post(document["token_endpoint"], timeout=30, data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion})
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
