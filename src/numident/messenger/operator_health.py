"""How each operator's gateway has been answering this process: latency, errors and 429s.

Every HTTP exchange with a gateway (tokens, requests, polls) goes through a
:class:`MeasuredTransport` that tells :class:`OperatorHealth` how long it took and how it
ended. The figures are this process's own since it started (the last ``window`` exchanges for
the latency percentiles); the console shows them as such.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import httpx2

from numident.core.clock import Clock


@dataclass
class _Calls:
    total: int = 0
    errors: int = 0
    """Network failures and 5xx answers."""
    throttled: int = 0
    """429 answers (the gateway's overload or the organizer's limits)."""
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_call_at: datetime | None = None
    seconds: deque[float] = field(default_factory=lambda: deque(maxlen=500))


@dataclass(frozen=True)
class OperatorCalls:
    inn: str
    total: int
    errors: int
    throttled: int
    p50_seconds: float | None
    p95_seconds: float | None
    last_error: str | None
    last_error_at: datetime | None
    last_call_at: datetime | None


class OperatorHealth:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._calls: dict[str, _Calls] = {}
        self._lock = threading.Lock()

    def record(self, inn: str, seconds: float, status: int | None,
               error: str | None = None) -> None:
        """One exchange with operator ``inn``: its HTTP status, or None with ``error`` when
        no answer came."""
        now = self._clock.now()
        with self._lock:
            calls = self._calls.setdefault(inn, _Calls())
            calls.total += 1
            calls.last_call_at = now
            calls.seconds.append(seconds)
            if status == 429:
                calls.throttled += 1
            elif status is None or status >= 500:
                calls.errors += 1
                calls.last_error = error or f"HTTP {status}"
                calls.last_error_at = now

    def summary(self) -> dict[str, OperatorCalls]:
        with self._lock:
            return {inn: OperatorCalls(inn, c.total, c.errors, c.throttled,
                                       *_percentiles(list(c.seconds)), c.last_error,
                                       c.last_error_at, c.last_call_at)
                    for inn, c in self._calls.items()}


def _percentiles(seconds: list[float]) -> tuple[float | None, float | None]:
    if not seconds:
        return None, None
    if len(seconds) == 1:
        return seconds[0], seconds[0]
    cuts = statistics.quantiles(seconds, n=20, method="inclusive")
    return statistics.median(seconds), cuts[18]


class MeasuredTransport(httpx2.AsyncBaseTransport):
    """``inner``, with each exchange's duration and outcome told to ``health``."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, inn: str,
                 health: OperatorHealth) -> None:
        self._inner, self._inn, self._health = inner, inn, health

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            self._health.record(self._inn, time.perf_counter() - started, None,
                                f"{type(exc).__name__}")
            raise
        self._health.record(self._inn, time.perf_counter() - started, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
