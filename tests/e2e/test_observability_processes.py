"""What operations teams read from real server processes: JSON logs, the access log, the log of
refused authentications, and the metrics after a known scenario."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from e2e_servers import (
    Receiver,
    Server,
    cli,
    notice_receiver,
    register_gateway,
    start_server,
    wait_for,
)
from prometheus_client.parser import text_string_to_metric_families

from numident import __version__
from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import SystemClock
from numident.demo.data import write_plan

LOG_KEY = "0f" * 32
NUMBERS = ["+79165550000", "+79165550001"]
UNKNOWN = "+79165559999"


def digest(number: str) -> str:
    return hmac.digest(bytes.fromhex(LOG_KEY), number.encode(), "sha256").hex()[:16]


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of the server's output, each of which must be one JSON object."""
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} of the server's output is not JSON: {line!r}")
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The server's /metrics, parsed by the Prometheus client's own parser."""
    text = httpx2.get(f"{server.url}/metrics").text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with notice_receiver() as running:
        yield running


@dataclass
class Gateway:
    server: Server
    key: PrivateKey

    def token(self) -> dict[str, str]:
        assertion = make_client_assertion(self.key, "chat", self.server.url, SystemClock())
        response = httpx2.post(f"{self.server.url}/oauth2/token",
                               data=token_request_form(assertion))
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def gateway(tmp_path: Path, receiver: Receiver, database_url: str) -> Iterator[Gateway]:
    """A gateway process logging JSON, with two subscribers and the organizer "chat"."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_DATABASE_URL": database_url,
           "NUMIDENT_LOG_FORMAT": "json", "NUMIDENT_LOG_KEY": LOG_KEY,
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": "e2e-admin"}
    key = register_gateway(tmp_path, env, NUMBERS, receiver.url)
    server = start_server("operator", env, tmp_path / "gateway.log")
    try:
        yield Gateway(server, key)
    finally:
        server.stop()


def test_gateway_logs_json_only_with_request_ids_and_no_number_in_clear(
        gateway: Gateway) -> None:
    """Every line of a JSON-logging gateway is a JSON object, uvicorn's and alembic's included;
    each request has an access line carrying its request id, route, status, duration,
    organizer and the subscriber's keyed digest; each refused authentication has a line with
    its reason and client, and no number, assertion or token appears in clear."""
    url = gateway.server.url
    forged = make_client_assertion(generate_key(), "chat", url, SystemClock())
    refused = httpx2.post(f"{url}/oauth2/token", data=token_request_form(forged))
    assert refused.status_code == 401
    bearer = gateway.token()
    answer = httpx2.post(f"{url}/identification/v1/requests",
                         headers={**bearer, "X-Request-Id": "e2e-request-1"},
                         json={"phoneNumber": NUMBERS[0], "identificationCode": "user-0"})
    assert answer.json()["result"] == "confirmed"
    assert answer.headers["x-request-id"] == "e2e-request-1"
    generated = httpx2.post(f"{url}/identification/v1/requests", headers=bearer,
                            json={"phoneNumber": UNKNOWN, "identificationCode": "user-9"})
    assert generated.json()["result"] == "not_found"
    generated_id = generated.headers["x-request-id"]
    bad_bearer = httpx2.get(f"{url}/identification/v1/requests/{answer.json()['requestId']}",
                            headers={"Authorization": "Bearer not-a-token",
                                     "x-correlator": "e2e-correlator-2"})
    assert bad_bearer.status_code == 401
    assert bad_bearer.headers["x-request-id"] == "e2e-correlator-2"
    bad_admin = httpx2.post(f"{url}/admin/v1/events", headers={"Authorization": "Bearer guess"},
                            json={"type": "number_ported_out", "phoneNumber": NUMBERS[1]})
    assert bad_admin.status_code == 401
    gateway.server.stop()

    log = gateway.server.log
    lines = json_lines(log)
    text = log.read_text(encoding="utf-8")
    loggers = {line.get("logger") for line in lines}
    assert {"uvicorn.error", "numident.access", "numident.auth"} <= loggers
    assert any(str(name).startswith("alembic") for name in loggers)
    assert all({"timestamp", "level", "event"} <= line.keys() for line in lines)
    for secret in (*NUMBERS, UNKNOWN, *(n[1:] for n in (*NUMBERS, UNKNOWN)), forged,
                   bearer["Authorization"].split()[1], "not-a-token", "guess"):
        assert secret not in text
    access = {line["request_id"]: line for line in lines if line["event"] == "request"}
    first = access["e2e-request-1"]
    assert first["method"] == "POST"
    assert first["route"] == first["path"] == "/identification/v1/requests"
    assert (first["status"], first["organizer"]) == (200, "chat")
    assert first["subscriber"] == digest(NUMBERS[0])
    assert first["duration_ms"] > 0
    assert first["client"] == "127.0.0.1"
    assert access[generated_id]["subscriber"] == digest(UNKNOWN)
    assert len(generated_id) == 32
    read = access["e2e-correlator-2"]
    assert (read["route"], read["status"]) == ("/identification/v1/requests/{requestId}", 401)
    assert read["organizer"] is None
    refusals = [(line["check"], line["reason"], line["client_id"], line["level"])
                for line in lines if line["event"] == "authentication refused"]
    assert refusals == [("client_assertion", "invalid_client", "chat", "warning"),
                        ("access_token", "INVALID_TOKEN", None, "warning"),
                        ("admin_token", "INVALID_TOKEN", None, "warning")]
    [bearer_refusal] = [line for line in lines if line["event"] == "authentication refused"
                        and line["check"] == "access_token"]
    assert bearer_refusal["request_id"] == "e2e-correlator-2"


def test_gateway_metrics_count_a_known_scenario(gateway: Gateway, receiver: Receiver) -> None:
    """After two answers (one confirmed, one not found), one refused token request and one
    delivered notice, the scraped metrics say exactly that, beside the build and process
    collectors."""
    url = gateway.server.url
    forged = make_client_assertion(generate_key(), "chat", url, SystemClock())
    assert httpx2.post(f"{url}/oauth2/token", data=token_request_form(forged)).status_code == 401
    bearer = gateway.token()
    for number in (NUMBERS[0], UNKNOWN):
        httpx2.post(f"{url}/identification/v1/requests", headers=bearer,
                    json={"phoneNumber": number, "identificationCode": "user-0"})
    event = httpx2.post(f"{url}/admin/v1/events", headers={"Authorization": "Bearer e2e-admin"},
                        json={"type": "number_ported_out", "phoneNumber": NUMBERS[0]})
    assert event.json()["notices"] == 1
    assert wait_for(lambda: value(scrape(gateway.server), "numident_notices",
                                  status="delivered") == 1)

    samples = scrape(gateway.server)
    assert len(receiver.received) == 1
    identification = {"method": "POST", "route": "/identification/v1/requests"}
    assert value(samples, "numident_http_requests_total", status="200", **identification) == 2
    assert value(samples, "numident_http_request_duration_seconds_count", **identification) == 2
    assert value(samples, "numident_http_requests_total", method="POST", route="/oauth2/token",
                 status="401") == 1
    assert value(samples, "numident_http_requests_total", method="POST", route="/oauth2/token",
                 status="200") == 1
    assert value(samples, "numident_answers_total", result="confirmed") == 1
    assert value(samples, "numident_answers_total", result="not_found") == 1
    assert value(samples, "numident_answers_late_total") == 0
    assert value(samples, "numident_requests_refused_total") == 0
    assert value(samples, "numident_notices", status="pending") == 0
    assert value(samples, "numident_notices", status="dead") == 0
    assert value(samples, "numident_notices_oldest_undelivered_seconds") == 0
    assert value(samples, "numident_notices_delivery_attempts_total", outcome="delivered") == 1
    assert value(samples, "numident_notices_delivery_attempts_total", outcome="failed") == 0
    assert value(samples, "numident_notices_dead_letters_total") == 0
    [build] = [(dict(labels), v) for (name, labels), v in samples.items()
               if name == "numident_build_info"]
    assert (build[0]["version"], build[1]) == (__version__, 1)
    assert value(samples, "process_resident_memory_bytes") > 0
    assert value(samples, "process_open_fds") > 0
    assert any(name == "python_info" for name, _ in samples)
    assert any(name == "python_gc_collections_total" for name, _ in samples)


def test_messenger_service_logs_json_and_counts_its_requests(tmp_path: Path) -> None:
    """The messenger service too: JSON lines only, an access line with the subscriber's digest
    for a number change, a refused backend token logged, and its outbox and request metrics."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_LOG_FORMAT": "json",
           "NUMIDENT_LOG_KEY": LOG_KEY, "NUMIDENT_MESSENGER__API_TOKEN": "backend-secret"}
    # Codes go only to numbers of the plan's mobile ranges.
    cli(["messenger", "import-plan", str(write_plan(tmp_path / "plan.csv"))], env)
    server = start_server("messenger", env, tmp_path / "messenger.log")
    try:
        refused = httpx2.get(f"{server.url}/messenger/v1/accounts/alice",
                             headers={"Authorization": "Bearer wrong-secret"})
        assert refused.status_code == 401
        changed = httpx2.put(f"{server.url}/messenger/v1/accounts/alice/phone-number",
                             headers={"Authorization": "Bearer backend-secret",
                                      "X-Request-Id": "e2e-messenger-1"},
                             json={"phoneNumber": NUMBERS[0]})
        assert changed.status_code == 202
        forged = httpx2.post(f"{server.url}/messenger/v1/notices",
                             headers={"Content-Type": "application/cloudevents+json"},
                             content=b'{"specversion": "1.0"}')
        assert forged.status_code == 401
        samples = scrape(server)
    finally:
        server.stop()
    route = "/messenger/v1/accounts/{accountId}/phone-number"
    assert value(samples, "numident_http_requests_total", method="PUT", route=route,
                 status="202") == 1
    assert value(samples, "numident_http_requests_total", method="GET",
                 route="/messenger/v1/accounts/{accountId}", status="401") == 1
    assert value(samples, "numident_messenger_outbox", status="dead") == 0
    assert value(samples, "numident_messenger_outbox_delivery_attempts_total",
                 outcome="delivered") == 0
    assert any(name == "numident_build_info" for name, _ in samples)

    lines = json_lines(server.log)
    text = server.log.read_text(encoding="utf-8")
    assert NUMBERS[0][1:] not in text
    assert "wrong-secret" not in text
    [change] = [line for line in lines if line.get("request_id") == "e2e-messenger-1"
                and line["event"] == "request"]
    assert (change["route"], change["status"]) == (route, 202)
    assert change["subscriber"] == digest(NUMBERS[0])
    refusals = [(line["check"], line["reason"]) for line in lines
                if line["event"] == "authentication refused"]
    assert refusals[0] == ("backend_token", "INVALID_TOKEN")
    assert refusals[1][0] == "notice_signature"
    assert refusals[1][1].startswith("SIGNATURE_")
    assert len(refusals) == 2
