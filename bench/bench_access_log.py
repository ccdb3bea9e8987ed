"""What the access log and the HTTP metrics cost per request, in process.

The same small Starlette route (a path parameter holding a phone number, noted as the
request's subscriber) is called through httpx2's ASGI transport, without and with
:class:`~numident.web.access_log.AccessLog`: once with logging at INFO writing JSON lines (to
``/dev/null``, so the figure is formatting, not a terminal), once at WARNING (the line dropped,
the metrics still observed). Rounds alternate so that a loaded machine hurts every variant
alike. Bounded by ``--requests`` per round and ``--rounds``; prints microseconds per request
and the differences, never fails on time.

    .venv/bin/python bench/bench_access_log.py [--requests 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import TextIO

import httpx2
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from numident.logs import configure_logging
from numident.web.access_log import AccessLog, note_subscriber
from numident.web.metrics import HttpMetrics


async def line(request: Request) -> PlainTextResponse:
    note_subscriber(request.path_params["number"])
    return PlainTextResponse("ok")


def application(logged: bool) -> Starlette:
    app = Starlette(routes=[Route("/lines/{number}", line)])
    if logged:
        app.add_middleware(AccessLog, key=b"k" * 32, metrics=HttpMetrics(CollectorRegistry()))
    return app


async def per_request(app: Starlette, requests: int) -> float:
    """Microseconds per request over ``requests`` sequential calls."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                  base_url="http://bench") as client:
        started = time.perf_counter()
        for n in range(requests):
            response = await client.get(f"/lines/+7916{n:07d}")
            assert response.status_code == 200
        return (time.perf_counter() - started) / requests * 1e6


async def main(requests: int, rounds: int, sink: TextIO) -> None:
    variants = {"no access log": ("WARNING", False), "access log, INFO (JSON)": ("INFO", True),
                "access log, WARNING": ("WARNING", True)}
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (level, logged) in variants.items():
            configure_logging(level, "json", stream=sink)
            figures[name].append(await per_request(application(logged), requests))
    base = statistics.median(figures["no access log"])
    print(f"{requests} requests x {rounds} rounds, median microseconds per request:")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"  {name:26} {median:8.1f} us   (+{median - base:6.1f} us, "
              f"x{median / base:.2f} of no access log)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    with Path("/dev/null").open("w") as devnull:
        asyncio.run(main(arguments.requests, arguments.rounds, devnull))
