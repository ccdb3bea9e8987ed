"""Per-organizer rate limits and daily quotas through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest
from operator_harness import ADMIN, SUBSCRIBERS, Harness, HarnessFactory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from numident.core.clock import FakeClock
from numident.errors import TooManyRequests
from numident.operator.identification import Item, Organizer
from numident.operator.organizers import Limits, find, set_limits
from numident.operator.tables import audit, identification_requests

pytestmark = pytest.mark.anyio


def limited_total(metrics: str, organizer: str, limit: str) -> float:
    """The value of numident_limited_items_total{organizer, limit} in a /metrics page."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "numident_limited_items_total" and sample.labels == {
                    "organizer": organizer, "limit": limit}:
                return float(sample.value)
    return 0.0


def limit_entries(h: Harness) -> list[tuple[str, dict[str, Any]]]:
    with h.gateway.engine.connect() as conn:
        return [(r.actor, r.detail) for r in conn.execute(
            select(audit.c.actor, audit.c.detail).where(audit.c.action == "limit_exceeded")
            .order_by(audit.c.id))]


def request_count(h: Harness) -> int:
    with h.gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(identification_requests))
                   .scalar_one())


async def batch(h: Harness, size: int, name: str = "chat", start: int = 0) -> httpx2.Response:
    return await h.client.post("/identification/v1/requests/batch", headers=await h.auth(name),
                               json={"requests": [
                                   {"phoneNumber": "+79161234567",
                                    "identificationCode": f"user-{start + n}"}
                                   for n in range(size)]})


async def limited_gateway(make_gateway: HarnessFactory, rate: int | None = None,
                          quota: int | None = None, **operator: Any) -> Harness:
    h: Harness = await make_gateway(clock=FakeClock(), **operator)
    h.import_csv(SUBSCRIBERS)
    set_limits(h.gateway.engine, "chat", Limits(rate, quota))
    return h


async def test_single_requests_over_the_rate_get_429_with_retry_after(
        make_gateway: HarnessFactory) -> None:
    """At 2 items/s the third request in one second is refused with the CAMARA body; a second
    later requests pass again."""
    h = await limited_gateway(make_gateway, rate=2)
    assert [(await h.identify("+79161234567", f"user-{n}")).status_code
            for n in range(2)] == [200, 200]
    refused = await h.identify("+79161234567", "user-3")
    assert refused.status_code == 429
    assert refused.json() == {"status": 429, "code": "TOO_MANY_REQUESTS",
                              "message": "more than 2 identification items per second"}
    assert refused.headers["retry-after"] == "1"
    assert request_count(h) == 2
    h.clock.advance(1.0)  # type: ignore[attr-defined]
    assert (await h.identify("+79161234567", "user-3")).status_code == 200


async def test_batch_items_count_one_by_one_against_the_rate(make_gateway: HarnessFactory
                                                             ) -> None:
    """A batch of 25 at 10/s passes from a full bucket and leaves a debt: the next request
    waits until 16 tokens have come back (Retry-After 2), then passes."""
    h = await limited_gateway(make_gateway, rate=10)
    first = await batch(h, 25)
    assert first.status_code == 200
    assert len(first.json()["results"]) == 25
    refused = await batch(h, 1, start=100)
    assert refused.status_code == 429
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert refused.headers["retry-after"] == "2"
    h.clock.advance(1.5)  # type: ignore[attr-defined]
    assert (await batch(h, 1, start=100)).status_code == 429
    h.clock.advance(0.1)  # type: ignore[attr-defined]
    assert (await batch(h, 1, start=100)).status_code == 200


async def test_a_batch_over_the_daily_quota_is_refused_whole(make_gateway: HarnessFactory
                                                             ) -> None:
    """With 2 of 5 items left today, a batch of 3 is refused whole (no request kept, the
    message says what is left, Retry-After runs to UTC midnight); a batch of 2 passes."""
    h = await limited_gateway(make_gateway, quota=5)
    assert (await batch(h, 3)).status_code == 200
    refused = await batch(h, 3, start=10)
    assert refused.status_code == 429
    assert refused.json() == {
        "status": 429, "code": "QUOTA_EXCEEDED",
        "message": "the daily quota of 5 identification items would be exceeded (2 left "
                   "today, UTC)"}
    assert refused.headers["retry-after"] == str(12 * 3600)  # the fake clock is at 12:00 UTC
    assert request_count(h) == 3
    assert (await batch(h, 2, start=10)).status_code == 200
    single = await h.identify("+79161234567", "user-99")
    assert (single.status_code, single.json()["code"]) == (429, "QUOTA_EXCEEDED")
    assert request_count(h) == 5
    h.clock.advance(12 * 3600)  # type: ignore[attr-defined]
    assert (await h.identify("+79161234567", "user-99")).status_code == 200


async def test_refusals_are_counted_per_organizer_and_audited_once_per_window(
        make_gateway: HarnessFactory) -> None:
    """Ten refused items make the metric 10 but only one audit entry; after the audit interval
    the next refusal is audited again, with the count of the items refused since the last
    entry. Another organizer is not limited by chat's limit."""
    h = await limited_gateway(make_gateway, quota=1,
                              limits={"audit_interval_seconds": 60})
    h.register("other")
    assert (await h.identify("+79161234567", "user-0")).status_code == 200
    for n in range(10):
        assert (await h.identify("+79161234567", f"user-{n + 1}")).status_code == 429
    metrics = (await h.client.get("/metrics")).text
    assert limited_total(metrics, "chat", "daily_quota") == 10.0
    assert limited_total(metrics, "chat", "rate_limit") == 0.0
    assert limit_entries(h) == [("chat", {"limit": "daily_quota", "value": 1, "items": 1,
                                          "refused": 1})]
    h.clock.advance(59)  # type: ignore[attr-defined]
    assert (await batch(h, 4)).status_code == 429
    assert len(limit_entries(h)) == 1
    h.clock.advance(1)  # type: ignore[attr-defined]
    assert (await batch(h, 4)).status_code == 429
    assert limit_entries(h)[1] == ("chat", {"limit": "daily_quota", "value": 1, "items": 4,
                                            "refused": 9 + 4 + 4})
    assert (await h.identify("+79161234567", "user-1", name="other")).status_code == 200


async def test_gateway_defaults_apply_unless_the_organizer_has_its_own(
        make_gateway: HarnessFactory) -> None:
    """The configured default quota limits an organizer without one; an organizer registered
    with its own quota through the admin API gets that instead."""
    h: Harness = await make_gateway(clock=FakeClock(), limits={"daily_quota": 1})
    other = h.register("other")
    response = await h.client.post("/admin/v1/organizers", headers=ADMIN, json={
        "name": "other", "noticeUrl": "https://other.example/notices",
        "publicKey": json.dumps(other.public_jwk()), "replace": True,
        "dailyQuota": 3, "rateLimit": 50})
    assert response.status_code == 201, response.text
    assert response.json()["dailyQuota"] == 3
    assert response.json()["effective"] == {"rateLimit": 50, "dailyQuota": 3}
    assert [(await h.identify("+79161234567", f"u-{n}")).status_code for n in range(2)] == [
        200, 429]
    assert [(await h.identify("+79161234567", f"u-{n}", name="other")).status_code
            for n in range(4)] == [200, 200, 200, 429]


async def test_admin_api_changes_limits_of_an_existing_organizer_at_once(
        make_gateway: HarnessFactory) -> None:
    """PUT .../limits sets the quota the next request meets; null returns to the default; the
    answer shows today's count. Bad values get 400 and change nothing."""
    h = await limited_gateway(make_gateway)
    assert (await h.identify("+79161234567", "user-1")).status_code == 200
    put = await h.client.put("/admin/v1/organizers/chat/limits", headers=ADMIN,
                             json={"rateLimit": None, "dailyQuota": 1})
    assert put.status_code == 200, put.text
    assert put.json() == {"rateLimit": None, "dailyQuota": 1,
                          "effective": {"rateLimit": None, "dailyQuota": 1}, "itemsToday": 0}
    assert (await h.identify("+79161234567", "user-2")).status_code == 200
    assert (await h.identify("+79161234567", "user-3")).status_code == 429
    for bad in ({"rateLimit": 0, "dailyQuota": None}, {"rateLimit": "5", "dailyQuota": None},
                {"rateLimit": True, "dailyQuota": None}, {"dailyQuota": 2}):
        refused = await h.client.put("/admin/v1/organizers/chat/limits", headers=ADMIN,
                                     json=bad)
        assert refused.status_code == 400, bad
        assert refused.json()["code"] == "INVALID_ARGUMENT"
    assert find(h.gateway.engine, "chat").limits == Limits(None, 1)
    missing = await h.client.put("/admin/v1/organizers/nobody/limits", headers=ADMIN,
                                 json={"rateLimit": 1, "dailyQuota": 1})
    assert (missing.status_code, missing.json()["code"]) == (404, "ORGANIZER_NOT_FOUND")
    cleared = await h.client.put("/admin/v1/organizers/chat/limits", headers=ADMIN,
                                 json={"rateLimit": None, "dailyQuota": None})
    assert cleared.json()["itemsToday"] == 1
    assert (await h.identify("+79161234567", "user-3")).status_code == 200
    shown = await h.client.get("/admin/v1/organizers/chat/limits", headers=ADMIN)
    assert shown.json()["effective"] == {"rateLimit": None, "dailyQuota": None}


async def test_items_refused_by_the_deferred_queue_are_given_back_to_the_quota(
        make_gateway: HarnessFactory) -> None:
    """A request admitted by the quota but refused by the full deferred queue costs nothing."""
    h = await limited_gateway(make_gateway, quota=2, deferred=True, check_seconds=600,
                              workers=1)
    assert (await h.identify("+79161234567", "user-1")).status_code == 202
    refused = await h.identify("+79161234568", "user-2")
    assert (refused.status_code, refused.json()["code"]) == (429, "TOO_MANY_REQUESTS")
    chat = find(h.gateway.engine, "chat")
    assert h.gateway.limits.counted(chat.id, h.clock.now().date()) == 1


async def test_the_daily_quota_holds_across_replicas_on_one_database(
        make_gateway: HarnessFactory) -> None:
    """Two gateways on one database, called concurrently from eight threads, answer between
    them exactly the quota: 50 of 80 requests, 50 request rows, a count of 50."""
    clock = FakeClock()
    first: Harness = await make_gateway(clock=clock)
    second: Harness = await make_gateway(clock=clock, register=False)
    first.import_csv(SUBSCRIBERS)
    set_limits(first.gateway.engine, "chat", Limits(None, 50))
    chat = Organizer(find(first.gateway.engine, "chat").id, "chat")
    replicas = [first.gateway, second.gateway]

    def identify(n: int) -> str:
        try:
            replicas[n % 2].identify(chat, [Item("+79161234567", f"user-{n}")])
        except TooManyRequests as exc:
            return exc.code
        return "answered"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(identify, range(80)))
    assert (outcomes.count("answered"), outcomes.count("QUOTA_EXCEEDED")) == (50, 30)
    assert request_count(first) == 50
    assert first.gateway.limits.counted(chat.id, clock.now().date()) == 50
    second.keys["chat"] = first.keys["chat"]
    assert (await second.identify("+79161234567", "user-x")).json()["code"] == "QUOTA_EXCEEDED"


async def test_a_limit_changed_on_one_replica_applies_on_another_within_a_second(
        make_gateway: HarnessFactory) -> None:
    """A replica that has served the organizer keeps its limits for at most a second: a quota
    set through another replica's admin API holds there once that second has passed."""
    clock = FakeClock()
    first: Harness = await make_gateway(clock=clock)
    second: Harness = await make_gateway(clock=clock, register=False)
    second.keys["chat"] = first.keys["chat"]
    first.import_csv(SUBSCRIBERS)
    assert (await second.identify("+79161234567", "user-1")).status_code == 200
    put = await first.client.put("/admin/v1/organizers/chat/limits", headers=ADMIN,
                                 json={"rateLimit": None, "dailyQuota": 1})
    assert put.json()["itemsToday"] == 0  # items count only while a quota applies
    assert (await first.identify("+79161234567", "user-2")).status_code == 200
    assert (await first.identify("+79161234567", "user-3")).status_code == 429
    assert (await second.identify("+79161234567", "user-3")).status_code == 200
    clock.advance(1.0)
    refused = await second.identify("+79161234567", "user-3")
    assert (refused.status_code, refused.json()["code"]) == (429, "QUOTA_EXCEEDED")
