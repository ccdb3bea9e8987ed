"""OpenTelemetry traces of a real gateway app (the ``otel`` extra, installed with the tests):
a server span per request, a child span per SQL statement, exported to an in-memory exporter."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from numident.client.assertions import make_client_assertion, token_request_form
from numident.client.keys import generate_key
from numident.config import TracingSettings, load_settings
from numident.core.clock import SystemClock
from numident.errors import ConfigurationError
from numident.operator import organizers
from numident.operator.app import create_app
from numident.storage.database import create_database_engine
from numident.web.tracing import install_tracing, otlp_exporter

BASE_URL = "http://127.0.0.1:8080"



@pytest.mark.anyio
async def test_each_request_is_a_server_span_with_its_statements_as_children(
        database_url: str, tmp_path: Path) -> None:
    """A token request gives one server span named by its route, and the organizer lookup's
    SQL statements are spans of the same trace beneath it, under the gateway's service name."""
    settings = load_settings(None, home=str(tmp_path), database_url=database_url,
                             operator={"public_url": BASE_URL})
    engine = create_database_engine(database_url)
    app = create_app(settings, engine=engine, background=False)
    exporter = InMemorySpanExporter()
    provider = install_tracing(app, engine, TracingSettings(), "operator", exporter=exporter,
                               batch=False)
    assert provider is not None
    key = generate_key()
    organizers.add_organizer(engine, "chat", "http://127.0.0.1:9/notices",
                             json.dumps(key.public_jwk()), SystemClock().now())
    async with app.router.lifespan_context(app), httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url=BASE_URL) as client:
        assertion = make_client_assertion(key, "chat", BASE_URL, SystemClock())
        response = await client.post("/oauth2/token", data=token_request_form(assertion))
        assert response.status_code == 200
        assert (await client.get("/healthz")).status_code == 200

    spans = exporter.get_finished_spans()
    [server] = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.name == "POST /oauth2/token"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/oauth2/token"
    assert server.resource.attributes["service.name"] == "numident-operator"
    statements = [str(s.attributes["db.statement"]) for s in spans
                  if s.attributes and "db.statement" in s.attributes
                  and s.context.trace_id == server.context.trace_id]
    assert any("FROM organizers" in statement for statement in statements)
    assert not [s for s in spans if s.kind is SpanKind.SERVER and "healthz" in s.name]
    engine.dispose()


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """No config key and no standard variable: no exporter, so no traces and no overhead."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert otlp_exporter(TracingSettings()) is None


def test_the_config_key_sends_traces_to_the_collectors_traces_path() -> None:
    """``tracing.otlp_endpoint`` is the collector's base URL, as the standard variable is."""
    exporter = otlp_exporter(TracingSettings(otlp_endpoint="http://127.0.0.1:4318/"))
    assert exporter is not None
    assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"  # type: ignore[attr-defined]
    exporter.shutdown()


def test_a_service_name_that_is_not_a_string_is_refused() -> None:
    """Settings are validated once, naming the key."""
    with pytest.raises(ConfigurationError, match=r"tracing\.service_name"):
        load_settings(None, tracing={"service_name": ["a"]})
