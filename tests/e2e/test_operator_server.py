"""The operator gateway as a real process on loopback, driven like an organizer would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from e2e_servers import (
    Receiver,
    Server,
    notice_receiver,
    register_gateway,
    start_server,
    wait_for,
)

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import PrivateKey, load_public_key
from numident.client.signatures import NoticeVerifier
from numident.core.clock import SystemClock

ADMIN = {"Authorization": "Bearer e2e-admin"}
NUMBERS = [f"+7916555{n:04d}" for n in range(40)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with notice_receiver() as running:
        yield running


@pytest.fixture
def installation(tmp_path: Path, receiver: Receiver, database_url: str) -> dict[str, object]:
    """A gateway home with subscribers and the organizer "chat" registered through the CLI."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_DATABASE_URL": database_url,
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": "e2e-admin",
           "NUMIDENT_OPERATOR__DISPATCH__INITIAL_BACKOFF_SECONDS": "0.2",
           "NUMIDENT_OPERATOR__DISPATCH__LEASE_SECONDS": "2"}
    key = register_gateway(tmp_path, env, NUMBERS, receiver.url)
    return {"env": env, "key": key, "log": tmp_path / "gateway.log"}


def token(server: Server, key: PrivateKey) -> dict[str, str]:
    # Without a public URL the issuer, and so the audience, is where the server listens.
    assertion = make_client_assertion(key, "chat", server.url, SystemClock())
    response = httpx2.post(f"{server.url}/oauth2/token", data=token_request_form(assertion))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_organizer_identifies_and_receives_a_signed_notice(installation: dict[str, object],
                                                            receiver: Receiver) -> None:
    """Token, identification, an event by the admin API, and a verifiable notice, over TCP."""
    server = start_server("operator", installation["env"], installation["log"])  # type: ignore[arg-type]
    try:
        headers = token(server, installation["key"])  # type: ignore[arg-type]
        answer = httpx2.post(f"{server.url}/identification/v1/requests", headers=headers,
                            json={"phoneNumber": NUMBERS[0], "identificationCode": "user-0"})
        assert answer.status_code == 200
        assert answer.json()["result"] == "confirmed"
        event = httpx2.post(f"{server.url}/admin/v1/events", headers=ADMIN,
                           json={"type": "number_ported_out", "phoneNumber": NUMBERS[0]})
        assert event.json()["notices"] == 1
        assert wait_for(lambda: len(receiver.received) == 1)
        headers_seen, body = receiver.received[0]
        jwks = httpx2.get(f"{server.url}/.well-known/jwks.json").json()["keys"][0]
        key = load_public_key(json.dumps(jwks))
        verifier = NoticeVerifier(lambda kid: key if kid == key.kid else None, SystemClock())
        assert verifier.verify("POST", receiver.url, headers_seen, body) == key.kid
        assert json.loads(body)["data"]["identificationCode"] == "user-0"
        openapi = httpx2.get(f"{server.url}/openapi.json").json()
        assert "/identification/v1/requests" in openapi["paths"]
        metrics = httpx2.get(f"{server.url}/metrics").text
        assert "numident_answer_seconds_bucket" in metrics
    finally:
        server.stop()


def test_sigkill_during_dispatch_loses_no_notice(installation: dict[str, object],
                                                 receiver: Receiver) -> None:
    """Killing the gateway mid-delivery and starting it again delivers every notice."""
    env: dict[str, str] = installation["env"]  # type: ignore[assignment]
    log: Path = installation["log"]  # type: ignore[assignment]
    server = start_server("operator", env, log)
    headers = token(server, installation["key"])  # type: ignore[arg-type]
    batch = {"requests": [{"phoneNumber": n, "identificationCode": f"user-{i}"}
                          for i, n in enumerate(NUMBERS)]}
    assert httpx2.post(f"{server.url}/identification/v1/requests/batch", headers=headers,
                      json=batch, timeout=30).status_code == 200
    receiver.delay = 0.3  # keep deliveries in flight when the kill comes
    for number in NUMBERS:
        response = httpx2.post(f"{server.url}/admin/v1/events", headers=ADMIN,
                              json={"type": "contract_terminated", "phoneNumber": number})
        assert response.status_code == 201
    assert wait_for(lambda: len(receiver.received) >= 3)
    server.kill()
    assert len(receiver.ids()) < len(NUMBERS)
    receiver.delay = 0.0
    # The restarted gateway sends what was never tried at once, and what the dead process
    # had in flight once its lease (2 s here) has run out.
    restarted = start_server("operator", env, log)
    try:
        listing = httpx2.get(f"{restarted.url}/admin/v1/notices?limit=1000", headers=ADMIN).json()
        all_ids = {n["id"] for n in listing["notices"]}
        assert len(all_ids) == len(NUMBERS)
        assert wait_for(lambda: receiver.ids() == all_ids, timeout=30)
        # Notices the killed process sent but could not record are sent again once its lease
        # ends (at least once: the receiver deduplicates by id) and then recorded.
        assert wait_for(lambda: _counts(restarted)["delivered"] == len(NUMBERS), timeout=30)
        assert _counts(restarted)["pending"] == _counts(restarted)["dead"] == 0
    finally:
        restarted.stop()


def _counts(server: Server) -> dict[str, int]:
    return dict(httpx2.get(f"{server.url}/admin/v1/notices", headers=ADMIN).json()["counts"])
