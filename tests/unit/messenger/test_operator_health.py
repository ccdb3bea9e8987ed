"""What the messenger's console says of each gateway (numident.messenger.operator_health)."""

from __future__ import annotations

import httpx2
import pytest

from numident.core.clock import FakeClock
from numident.messenger.operator_health import MeasuredTransport, OperatorHealth

pytestmark = pytest.mark.anyio



async def test_each_exchange_is_counted_429s_apart_from_errors() -> None:
    """200, 202 and 404 are answers; 429 is throttling; 503 and a refused connection are
    errors, the last one named."""
    statuses = iter([200, 202, 429, 503, 404])

    def answer(request: httpx2.Request) -> httpx2.Response:
        status = next(statuses, None)
        if status is None:
            raise httpx2.ConnectError("refused", request=request)
        return httpx2.Response(status)

    health = OperatorHealth(FakeClock())
    transport = MeasuredTransport(httpx2.MockTransport(answer), "7700000016", health)
    async with httpx2.AsyncClient(transport=transport) as client:
        for _ in range(5):
            await client.get("http://gateway.test/x")
        with pytest.raises(httpx2.ConnectError):
            await client.get("http://gateway.test/x")
    calls = health.summary()["7700000016"]
    assert (calls.total, calls.throttled, calls.errors) == (6, 1, 2)
    assert calls.last_error == "ConnectError"
    assert calls.p50_seconds is not None
    assert calls.p95_seconds is not None
    assert 0 <= calls.p50_seconds <= calls.p95_seconds
    assert health.summary().keys() == {"7700000016"}
