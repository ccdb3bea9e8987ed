"""What every numident HTTP application shares: errors, health, metrics, middleware, tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from numident.storage.database import read_only
from numident.web.errors import install_error_handlers
from numident.web.metrics import install_metrics_endpoint
from numident.web.middleware import BodyLimit, Correlator


def install_common(app: FastAPI, *, engine: Engine, registry: CollectorRegistry,
                   max_body_bytes: int,
                   health: Callable[[], dict[str, object]] = dict) -> None:
    """Error bodies, ``/healthz`` (checks the database), ``/metrics`` and the middleware.

    Call it after the routes are included: middleware added last runs first, so the body
    bound holds before any route reads a byte.
    """
    install_error_handlers(app)
    install_metrics_endpoint(app, registry)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        with read_only(engine) as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", **health()}

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(Correlator)


async def finish(stop: asyncio.Event, tasks: Sequence[asyncio.Task[None]],
                 grace: float = 5.0) -> None:
    """Ask background tasks to stop and wait for each (at most ``grace`` seconds)."""
    stop.set()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=grace)
