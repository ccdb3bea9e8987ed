"""docs/notices.md, followed by an operator that does not run numident.

The notices here are signed with ``requests-http-signature``, a third-party RFC 9421 client
library, from keys made with ``cryptography`` alone, and sent over HTTP to the messenger's API:
what passes here is what the published profile promises.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from messenger_fakes import ALPHA, LOOKUP, ScriptedGateway, answered
from requests_http_signature import HTTPSignatureAuth, algorithms
from sqlalchemy import Engine

from numident.client.keys import generate_key
from numident.config import load_settings
from numident.core.clock import FakeClock
from numident.messenger.app import create_app
from numident.messenger.sms import MemorySmsSender

pytestmark = pytest.mark.anyio
MESSENGER = "http://messenger.test"
URL = f"{MESSENGER}/messenger/v1/notices"
NUMBER = "+79161234567"
AUTH = {"Authorization": "Bearer backend-secret"}
PROFILE = ("@method", "@authority", "@path", "content-type", "content-digest")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pem(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ed25519_jwk(key: Ed25519PrivateKey, kid: str | None = None) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw), **({"kid": kid} if kid else {})}


def p256_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")), "kid": kid}


def rfc7638_thumbprint(jwk: dict[str, str]) -> str:
    """The key id of a key registered without one (RFC 7638, SHA-256)."""
    canonical = json.dumps({k: jwk[k] for k in sorted(("crv", "kty", "x"))},
                           separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def outsider_signed(private_pem: bytes, key_id: str, algorithm: type[algorithms.ED25519]
                    | type[algorithms.ECDSA_P256_SHA256], body: bytes,
                    headers: dict[str, str], covered: tuple[str, ...] = PROFILE
                    ) -> dict[str, str]:
    """The headers a requests-based sender puts on the POST, per docs/notices.md."""
    request = requests.Request("POST", URL, data=body, headers=headers).prepare()
    HTTPSignatureAuth(signature_algorithm=algorithm, key=private_pem, key_id=key_id,
                      covered_component_ids=covered, tag="numident-notice", label="op")(request)
    return {k: v for k, v in request.headers.items() if k.lower() != "content-length"}


def structured(code: str, kind: str = "contract_terminated") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()),
                       "source": "https://gateway.outsider.example",
                       "type": f"org.numident.notice.{kind}",
                       "time": "2026-11-30T10:00:00Z",
                       "data": {"phoneNumber": NUMBER, "identificationCode": code,
                                "occurredAt": "2026-11-30T10:00:00Z"}}).encode()
    return {"Content-Type": "application/cloudevents+json"}, body


def binary(code: str, kind: str = "number_ported_out") -> tuple[dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "ce-specversion": "1.0",
               "ce-id": str(uuid.uuid4()), "ce-source": "https://gateway.outsider.example",
               "ce-type": f"org.numident.notice.{kind}", "ce-time": "2026-11-30T10:00:00Z"}
    body = json.dumps({"phoneNumber": NUMBER, "identificationCode": code,
                       "occurredAt": "2026-11-30T10:00:00Z"}).encode()
    return headers, body


CE_COVERED = (*PROFILE, "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time")


@pytest.fixture
def clock() -> FakeClock:
    """The library stamps ``created`` with the wall clock, so the messenger's starts there."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def ed_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def app_for(tmp_path: Path, engine: Engine, clock: FakeClock, gateway: ScriptedGateway,
            sms: MemorySmsSender):  # type: ignore[no-untyped-def]
    """A messenger app whose operator ALPHA registered ``notice_public_key``."""
    async def build(notice_public_key: str) -> FastAPI:
        settings = load_settings(None, home=str(tmp_path / "home"), messenger={
            "organizer": "chat", "api_token": "backend-secret",
            "possession": {"secret": "s" * 32},
            "operators": [{"inn": ALPHA, "gateway_url": "http://alpha.test",
                           "notice_public_key": notice_public_key}]})
        return create_app(settings, engine=engine, clock=clock, sms_sender=sms, lookup=LOOKUP,
                          transport_for_operator=gateway.transport, key=generate_key(),
                          background=False, migrate=False)
    return build


@pytest.fixture
async def identified(gateway: ScriptedGateway, sms: MemorySmsSender):  # type: ignore[no-untyped-def]
    """Run an app, identify user-1 on it, and hand out a client and the account's code."""
    async def run(app: FastAPI) -> AsyncIterator[tuple[httpx2.AsyncClient, str]]:
        gateway.default = answered("confirmed")
        async with app.router.lifespan_context(app), httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url=MESSENGER) as client:
            await client.put("/messenger/v1/accounts/user-1/phone-number",
                             json={"phoneNumber": NUMBER}, headers=AUTH)
            await client.post("/messenger/v1/accounts/user-1/phone-number/confirm",
                              json={"code": sms.last_code(NUMBER)}, headers=AUTH)
            await app.state.service.run_identifications()
            account = (await client.get("/messenger/v1/accounts/user-1", headers=AUTH)).json()
            assert account["state"] == "identified"
            yield client, account["identificationCode"]
    return run


async def state(client: httpx2.AsyncClient) -> str:
    return str((await client.get("/messenger/v1/accounts/user-1", headers=AUTH)).json()["state"])


async def test_structured_notice_signed_by_a_third_party_library_is_accepted(
        app_for, identified, ed_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """Ed25519, a JWK with the operator's own kid, structured mode: the account is blocked."""
    app = await app_for(json.dumps(ed25519_jwk(ed_key, "outsider-2026")))
    async for client, code in identified(app):
        headers, body = structured(code)
        signed = outsider_signed(pem(ed_key), "outsider-2026", algorithms.ED25519, body, headers)
        response = await client.post(URL, content=body, headers=signed)
        assert response.status_code == 200, response.text
        assert (response.json()["duplicate"], response.json()["accounts"]) == (False, 1)
        assert await state(client) == "reidentification_required"
        again = await client.post(URL, content=body, headers=signed)
        assert (again.status_code, again.json()["duplicate"]) == (200, True)


async def test_binary_mode_notice_with_its_ce_headers_signed_is_accepted(
        app_for, identified) -> None:  # type: ignore[no-untyped-def]
    """ES256, binary content mode (attributes in ce-* headers, all covered): accepted."""
    key = ec.generate_private_key(ec.SECP256R1())
    app = await app_for(json.dumps(p256_jwk(key, "outsider-p256")))
    async for client, code in identified(app):
        headers, body = binary(code)
        signed = outsider_signed(pem(key), "outsider-p256", algorithms.ECDSA_P256_SHA256, body,
                                 headers, CE_COVERED)
        response = await client.post(URL, content=body, headers=signed)
        assert response.status_code == 200, response.text
        assert (response.json()["type"], response.json()["accounts"]) == (
            "number_ported_out", 1)
        assert await state(client) == "reidentification_required"


async def test_a_pem_key_is_named_by_its_rfc7638_thumbprint(
        app_for, identified, ed_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """Registered as PEM (no kid), the keyid is the thumbprint the document describes."""
    public_pem = ed_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    app = await app_for(public_pem)
    async for client, code in identified(app):
        headers, body = structured(code)
        keyid = rfc7638_thumbprint(ed25519_jwk(ed_key))
        response = await client.post(URL, content=body, headers=outsider_signed(
            pem(ed_key), keyid, algorithms.ED25519, body, headers))
        assert response.status_code == 200, response.text


async def test_binary_mode_with_an_unsigned_ce_header_is_refused(
        app_for, identified, ed_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """A signed data body whose ce-type could be relabelled at will is not a notice: 401."""
    app = await app_for(json.dumps(ed25519_jwk(ed_key, "outsider-2026")))
    async for client, code in identified(app):
        headers, body = binary(code)
        signed = outsider_signed(pem(ed_key), "outsider-2026", algorithms.ED25519, body,
                                 headers, PROFILE)
        response = await client.post(URL, content=body, headers=signed)
        assert (response.status_code, response.json()["code"]) == (401, "SIGNATURE_INVALID")
        assert await state(client) == "identified"


async def test_binary_mode_without_a_required_attribute_is_refused(
        app_for, identified, ed_key: Ed25519PrivateKey) -> None:  # type: ignore[no-untyped-def]
    """Binary mode needs ce-id, ce-source, ce-specversion and ce-type, all signed."""
    app = await app_for(json.dumps(ed25519_jwk(ed_key, "outsider-2026")))
    async for client, code in identified(app):
        headers, body = binary(code)
        del headers["ce-source"]
        covered = tuple(c for c in CE_COVERED if c != "ce-source")
        response = await client.post(URL, content=body, headers=outsider_signed(
            pem(ed_key), "outsider-2026", algorithms.ED25519, body, headers, covered))
        assert response.status_code == 401
        assert await state(client) == "identified"
