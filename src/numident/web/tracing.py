"""OpenTelemetry traces, when the ``numident[otel]`` extra is installed and tracing is asked for.

Tracing is on when ``tracing.otlp_endpoint`` is set, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` variable is. Each
application then gets a tracer provider of its own (no global state: two servers in one
process trace apart) exporting in batches over OTLP/HTTP; every request is a server span
(FastAPI instrumentation) and every SQL statement a child span (SQLAlchemy instrumentation). The
provider is shut down, and so flushed, when the application's lifespan ends.

Without the extra the servers run untraced: asked for by the config file, that is a
configuration error naming the key; asked for by the environment alone (which other programs
read too), a warning line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine

from numident import __version__
from numident.config import TracingSettings
from numident.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

log = structlog.get_logger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXTRA_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http",
                 "opentelemetry.instrumentation.fastapi",
                 "opentelemetry.instrumentation.sqlalchemy")


def extra_installed() -> bool:
    """Whether every module of the ``otel`` extra can be imported."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in EXTRA_MODULES)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def otlp_exporter(settings: TracingSettings) -> SpanExporter | None:
    """The OTLP/HTTP exporter that ``settings`` or the environment ask for, else None."""
    from_environment = any(os.environ.get(name) for name in ENDPOINT_VARIABLES)
    if settings.otlp_endpoint is None and not from_environment:
        return None
    if not extra_installed():
        if settings.otlp_endpoint is not None:
            raise ConfigurationError("tracing.otlp_endpoint is set but the otel extra is not "
                                     "installed: pip install 'numident[otel]'")
        log.warning("an OTLP endpoint is set in the environment but the otel extra is not "
                    "installed (pip install 'numident[otel]'): no traces")
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if settings.otlp_endpoint is not None:
        return OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")
    return OTLPSpanExporter()  # reads the standard variables


def install_tracing(app: FastAPI, engine: Engine, settings: TracingSettings, side: str,
                    *, exporter: SpanExporter | None = None, batch: bool = True
                    ) -> TracerProvider | None:
    """Trace ``app``'s requests and ``engine``'s statements to ``exporter`` (default: the
    configured OTLP exporter); None when tracing is off. ``batch=False`` exports each span as
    it ends (tests)."""
    exporter = exporter or otlp_exporter(settings)
    if exporter is None:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    attributes: dict[str, Any] = {"service.version": __version__}
    name = settings.service_name or os.environ.get("OTEL_SERVICE_NAME")
    attributes["service.name"] = name or f"numident-{side}"
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                else SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider,
                                       excluded_urls="healthz,metrics")
    # Per engine, not SQLAlchemyInstrumentor's process-wide patch of create_engine: each
    # application's statements go to its own provider. Its connection-usage metric is not
    # wanted (the gateway's metrics are Prometheus's), hence the no-op meter.
    usage = NoOpMeterProvider().get_meter(__name__).create_up_down_counter(
        "db.client.connections.usage")
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
    served = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        try:
            async with served(application) as state:
                yield state
        finally:
            provider.shutdown()

    app.router.lifespan_context = lifespan
    return provider
