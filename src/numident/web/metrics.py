"""Prometheus metrics, one registry per application (no process-global state).

Every server's registry has, beside its own metrics, the HTTP metrics of
:class:`HttpMetrics`, ``numident_build_info`` (the version and the Python implementation) and
the client library's process (``process_*``), platform (``python_info``) and garbage collector
(``python_gc_*``) collectors.
"""

from __future__ import annotations

import platform

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

from numident import __version__

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class HttpMetrics:
    """Requests by method, route template and status, and their durations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "numident_http_requests", "HTTP requests served, by method, route template and "
            "status", ["method", "route", "status"], registry=registry)
        self.duration = Histogram(
            "numident_http_request_duration_seconds", "Time from a request's arrival to the "
            "end of its response, by method and route template", ["method", "route"],
            buckets=DURATION_BUCKETS, registry=registry)

        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled series are kept: looking them up by labels costs more than counting.
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series.setdefault((method, route, status), (
                self.requests.labels(method=method, route=route, status=str(status)),
                self.duration.labels(method=method, route=route)))
        series[0].inc()
        series[1].observe(seconds)


def install_standard_collectors(registry: CollectorRegistry) -> None:
    """``numident_build_info`` and the process, platform and GC collectors on ``registry``."""
    Info("numident_build", "The running numident", registry=registry).info(
        {"version": __version__, "python": platform.python_version(),
         "implementation": platform.python_implementation()})
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def install_metrics_endpoint(app: FastAPI, registry: CollectorRegistry) -> None:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/metrics", metrics, include_in_schema=False)
