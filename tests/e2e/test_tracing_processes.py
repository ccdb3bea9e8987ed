"""Traces from a real gateway process: exported over OTLP/HTTP to a collector on loopback when
the standard variable names one, and a server without the ``otel`` extra that still runs."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest
from e2e_servers import cli, start_server, wait_for
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

WITHOUT_OTEL = [sys.executable, str(Path(__file__).with_name("without_otel.py"))]


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP trace collector on loopback: its base URL and the requests it received."""
    received: list[ExportTraceServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def spans(received: list[ExportTraceServiceRequest]) -> list[tuple[str, str, dict[str, str]]]:
    """(service name, span name, string attributes) of every span received."""
    found = []
    for request in received:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value
                        for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    found.append((resource["service.name"], span.name, attributes))
    return found


def test_a_gateway_exports_its_spans_to_the_collector_the_environment_names(
        tmp_path: Path, collector: tuple[str, list[ExportTraceServiceRequest]]) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, a request's server span and its SQL statements
    reach the collector over OTLP/HTTP, under the configured service name."""
    url, received = collector
    env = {"NUMIDENT_HOME": str(tmp_path / "home"), "OTEL_EXPORTER_OTLP_ENDPOINT": url,
           "OTEL_BSP_SCHEDULE_DELAY": "100", "NUMIDENT_TRACING__SERVICE_NAME": "gw-alfa",
           "NUMIDENT_OPERATOR__ADMIN_TOKEN": "e2e-admin"}
    server = start_server("operator", env, tmp_path / "gateway.log")
    try:
        response = httpx2.get(f"{server.url}/admin/v1/organizers/chat/limits",
                              headers={"Authorization": "Bearer e2e-admin"})
        assert response.status_code == 404

        def exported() -> bool:
            return any(name == "GET /admin/v1/organizers/{name}/limits"
                       for _, name, _ in spans(received))

        assert wait_for(exported, timeout=20)
    finally:
        server.stop()
    found = spans(received)
    assert {service for service, _, _ in found} == {"gw-alfa"}
    [route] = [a for _, name, a in found if name == "GET /admin/v1/organizers/{name}/limits"]
    assert route["http.route"] == "/admin/v1/organizers/{name}/limits"
    assert any("FROM organizers" in a.get("db.statement", "") for _, _, a in found)


def test_a_gateway_without_the_otel_extra_runs_untraced_and_says_why(tmp_path: Path) -> None:
    """The standard variable set but the extra missing: the gateway serves, with a warning."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"),
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    server = start_server("operator", env, tmp_path / "gateway.log", command=WITHOUT_OTEL)
    try:
        assert httpx2.get(f"{server.url}/.well-known/jwks.json").status_code == 200
    finally:
        server.stop()
    assert "the otel extra is not installed" in server.log.read_text(encoding="utf-8")


def test_the_config_key_without_the_otel_extra_is_refused_naming_it(tmp_path: Path) -> None:
    """Asked for in numident's own settings, missing tracing is an error, not a surprise."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home"),
           "NUMIDENT_TRACING__OTLP_ENDPOINT": "http://127.0.0.1:9"}
    result = cli(["operator", "serve", "--port", "9"], env, check=False, command=WITHOUT_OTEL)
    assert result.returncode == 2  # a bad configuration
    assert "tracing.otlp_endpoint is set but the otel extra is not installed" in result.stderr
