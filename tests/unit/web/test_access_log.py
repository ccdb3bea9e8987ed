"""The access log middleware on a small application, in process: ids, routes, digests."""

from __future__ import annotations

import base64
import json

import httpx2
import pytest
import structlog
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from numident.web.access_log import (
    AccessLog,
    log_key,
    note_organizer,
    note_subscriber,
    request_id_of,
    subscriber_digest,
)
from numident.web.metrics import HttpMetrics
from numident.web.refusals import claimed_issuer

KEY = b"k" * 32


async def lookup(request: Request) -> PlainTextResponse:
    note_organizer("chat")
    note_subscriber(request.path_params["number"])
    return PlainTextResponse("ok")


async def broken(_: Request) -> PlainTextResponse:
    structlog.get_logger("test").info("inside")
    raise RuntimeError("broken route")



def client(registry: CollectorRegistry) -> httpx2.AsyncClient:
    app = Starlette(routes=[Route("/lines/{number}", lookup), Route("/broken", broken)])
    app.add_middleware(AccessLog, key=KEY, metrics=HttpMetrics(registry))
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx2.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.anyio
async def test_a_line_per_request_with_the_route_template_and_the_number_digested() -> None:
    """The access line names the route's template, the organizer and the subscriber's
    digest; the number in the path is digested too; the metrics count the template."""
    registry = CollectorRegistry()
    async with client(registry) as http:
        with capture_logs() as logs:
            response = await http.get("/lines/+79161234567?login_hint=tel:+79161234567",
                                      headers={"X-Request-Id": "given-1"})
    assert response.headers["x-request-id"] == "given-1"
    [line] = [entry for entry in logs if entry["event"] == "request"]
    assert line["route"] == "/lines/{number}"
    assert line["path"] == "/lines/#" + subscriber_digest(KEY, "+79161234567")
    assert line["subscriber"] == subscriber_digest(KEY, "+79161234567")
    assert (line["organizer"], line["status"], line["method"]) == ("chat", 200, "GET")
    assert "79161234567" not in json.dumps(logs)
    assert registry.get_sample_value("numident_http_requests_total", {
        "method": "GET", "route": "/lines/{number}", "status": "200"}) == 1


@pytest.mark.anyio
async def test_unmatched_paths_and_failing_routes_are_logged_and_counted() -> None:
    """A path no route has is counted as "unmatched" (the label stays bounded); a route that
    raises is logged with the 500 the client gets."""
    registry = CollectorRegistry()
    async with client(registry) as http:
        with capture_logs() as logs:
            assert (await http.get("/nowhere/12345")).status_code == 404
            assert (await http.get("/broken")).status_code == 500
    lines = [(e["route"], e["path"], e["status"]) for e in logs if e["event"] == "request"]
    assert lines == [("unmatched", "/nowhere/12345", 404), ("/broken", "/broken", 500)]
    assert registry.get_sample_value("numident_http_requests_total", {
        "method": "GET", "route": "unmatched", "status": "404"}) == 1


@pytest.mark.anyio
async def test_the_request_id_is_bound_while_serving_and_what_was_bound_comes_back() -> None:
    """Lines written by the route carry the request's id, even one that raises; afterwards
    the context holds what it held before, and each request is counted in its series."""
    registry = CollectorRegistry()
    structlog.contextvars.bind_contextvars(request_id="outer")
    try:
        async with client(registry) as http:
            with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
                for given in ("first", "second"):
                    await http.get("/broken", headers={"X-Request-Id": given})
        assert [(e["event"], e["request_id"]) for e in logs] == [
            ("inside", "first"), ("request", "first"), ("inside", "second"),
            ("request", "second")]
        assert structlog.contextvars.get_contextvars() == {"request_id": "outer"}
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    assert registry.get_sample_value("numident_http_requests_total", {
        "method": "GET", "route": "/broken", "status": "500"}) == 2
    assert registry.get_sample_value("numident_http_request_duration_seconds_count", {
        "method": "GET", "route": "/broken"}) == 2


def test_request_ids_come_from_the_caller_only_when_well_formed() -> None:
    """X-Request-Id first, then x-correlator; a malformed value is replaced by a new id."""
    assert request_id_of([(b"x-request-id", b"a-1"), (b"x-correlator", b"c-1")]) == "a-1"
    assert request_id_of([(b"x-correlator", b"c-1")]) == "c-1"
    made = request_id_of([(b"x-request-id", b"bad id\r\nX-Injected: 1")])
    assert len(made) == 32
    assert made != request_id_of([])


def test_the_log_key_is_the_configured_one_else_derived_from_the_sides_secret() -> None:
    """A configured key is used as given; a derived one is stable and is not the secret."""
    assert log_key(SecretStr("ab" * 32), b"secret") == bytes.fromhex("ab" * 32)
    derived = log_key(None, b"s" * 32)
    assert derived == log_key(None, b"s" * 32) != log_key(None, b"t" * 32)
    assert derived != b"s" * 32


def test_a_refused_assertion_names_the_issuer_it_claims_and_nothing_else() -> None:
    """The unverified ``iss`` of a JWT, for the refusal's log line; garbage gives None."""
    def encoded(claims: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")

    assert claimed_issuer(f"e30.{encoded({'iss': 'chat', 'sub': 'chat'})}.sig") == "chat"
    assert claimed_issuer(f"e30.{encoded({'iss': 'x' * 500})}.sig") == "x" * 128
    assert claimed_issuer(f"e30.{encoded(['iss'])}.sig") is None
    assert claimed_issuer("not.a-jwt!.x") is None
    assert claimed_issuer(None) is None
