"""What every numident HTTP application shares: errors, health, metrics, middleware, tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from numident.config import TracingSettings
from numident.storage.database import read_only
from numident.storage.migrate import Side
from numident.web.access_log import AccessLog
from numident.web.errors import install_error_handlers
from numident.web.metrics import HttpMetrics, install_metrics_endpoint, install_standard_collectors
from numident.web.middleware import BodyLimit, Correlator
from numident.web.tracing import install_tracing


def install_common(app: FastAPI, *, engine: Engine, registry: CollectorRegistry,
                   max_body_bytes: int, side: Side, log_key: bytes,
                   tracing: TracingSettings | None = None,
                   health: Callable[[], dict[str, object]] = dict) -> None:
    """Error bodies, ``/healthz`` (checks the database), ``/metrics`` (with the HTTP, build
    and process metrics), the access log (subscribers digested under ``log_key``), traces
    when ``tracing`` asks for them, and the middleware.

    Call it after the routes are included: middleware added last runs first, so the body
    bound holds before any route reads a byte, and the access log sees every response.
    """
    install_error_handlers(app)
    install_standard_collectors(registry)
    install_metrics_endpoint(app, registry)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        with read_only(engine) as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", **health()}

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(Correlator)
    app.add_middleware(AccessLog, key=log_key, metrics=HttpMetrics(registry))
    install_tracing(app, engine, tracing or TracingSettings(), side)


async def finish(stop: asyncio.Event, tasks: Sequence[asyncio.Task[None]],
                 grace: float = 5.0) -> None:
    """Ask background tasks to stop and wait for each (at most ``grace`` seconds)."""
    stop.set()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=grace)
