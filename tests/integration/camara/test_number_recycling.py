"""Number Recycling: has the subscriber of this number changed since a date?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_harness import ADMIN, BASE_URL, SUBSCRIBERS, Harness, HarnessFactory

from numident.core.clock import FakeClock
from numident.trust.tokens import AccessTokenIssuer

pytestmark = pytest.mark.anyio
SCOPE = "number-recycling:check"
CHECK = "/number-recycling/vwip/check"
LINE = "+79161234567"       # C-1 since 2021-03-01 (the harness's SUBSCRIBERS)
TERMINATED = "+79161234569"
NEW_LINE = "+79031112233"   # C-4 since 2024-06-01


async def gateway(make_gateway: HarnessFactory, **operator: Any) -> Harness:
    h: Harness = await make_gateway(register=False, **operator)
    h.register("chat", scopes=[SCOPE, "identification"])
    h.register("other", scopes=["identification"])
    h.import_csv(SUBSCRIBERS)
    return h


async def two_legged(h: Harness) -> dict[str, str]:
    return {"Authorization": f"Bearer {await h.token(scope=SCOPE)}", "x-correlator": "nr-1"}


async def recycled(h: Harness, number: str, day: str) -> bool:
    response = await h.client.post(CHECK, headers=await two_legged(h),
                                   json={"phoneNumber": number, "specifiedDate": day})
    assert response.status_code == 200, response.text
    assert response.headers["x-correlator"] == "nr-1"
    assert set(response.json()) == {"phoneNumberRecycled"}
    return bool(response.json()["phoneNumberRecycled"])


async def test_same_subscriber_since_the_date_is_not_recycled(make_gateway: HarnessFactory
                                                              ) -> None:
    """False from the day the holder signed on; true for any day before it."""
    h = await gateway(make_gateway)
    assert await recycled(h, LINE, "2023-12-22") is False
    assert await recycled(h, LINE, "2021-03-01") is False
    assert await recycled(h, LINE, "2021-02-28") is True


async def test_a_number_passed_to_another_holder_is_recycled(make_gateway: HarnessFactory
                                                             ) -> None:
    """User A's contract ends, user B signs on 2024-09-21: recycled since A's date only."""
    h = await gateway(make_gateway)
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "number_reassigned", "phoneNumber": LINE, "newContractId": "C-B",
        "occurredAt": "2024-09-21T09:00:00Z"})
    assert response.status_code == 201, response.text
    assert await recycled(h, LINE, "2023-12-22") is True
    assert await recycled(h, LINE, "2024-09-21") is False
    assert await recycled(h, LINE, "2024-10-01") is False


async def test_an_import_with_a_new_holder_recycles_the_number(make_gateway: HarnessFactory
                                                               ) -> None:
    h = await gateway(make_gateway)
    h.import_csv(f"phone_number,contract_id,status,activated_at\n{LINE},C-9,active,2024-09-21\n")
    assert await recycled(h, LINE, "2023-12-22") is True
    assert await recycled(h, LINE, "2024-09-22") is False


async def test_a_terminated_contract_counts_as_recycled(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    assert await recycled(h, TERMINATED, "2020-01-01") is True
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "contract_terminated", "phoneNumber": NEW_LINE,
        "occurredAt": "2025-01-01T00:00:00Z"})
    assert response.status_code == 201, response.text
    assert await recycled(h, NEW_LINE, "2024-07-01") is True


async def test_a_line_without_start_is_answered_from_its_history_or_out_of_range(
        make_gateway: HarnessFactory) -> None:
    """Without activated_at the registry answers only for days its history covers."""
    h = await gateway(make_gateway)
    h.import_csv("phone_number,contract_id,status,activated_at\n+79160000001,C-7,active,\n")
    today = h.clock.now().date()
    assert await recycled(h, "+79160000001", today.isoformat()) is False
    response = await h.client.post(CHECK, headers=await two_legged(h), json={
        "phoneNumber": "+79160000001", "specifiedDate": "2020-01-01"})
    assert response.status_code == 400
    assert response.json()["code"] == "OUT_OF_RANGE"


async def test_future_dates_and_dates_before_the_history_are_out_of_range(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"session_header": "X-Network-Session",
                                            "history_starts": "2020-01-01"})
    tomorrow = (h.clock.now() + timedelta(days=1)).date().isoformat()
    for day in (tomorrow, "2019-12-31"):
        response = await h.client.post(CHECK, headers=await two_legged(h),
                                       json={"phoneNumber": LINE, "specifiedDate": day})
        assert response.status_code == 400, day
        assert response.json()["status"] == 400
        assert response.json()["code"] == "OUT_OF_RANGE"
        assert response.json()["message"]
    assert await recycled(h, LINE, "2020-01-01") is True


@pytest.mark.parametrize("body", [
    None, {}, {"phoneNumber": LINE}, {"phoneNumber": LINE, "specifiedDate": "2024/10/31"},
    {"phoneNumber": LINE, "specifiedDate": "31-10-2024"},
    {"phoneNumber": LINE, "specifiedDate": "2024-02-30"},
    {"phoneNumber": LINE, "specifiedDate": "2024-10-31T00:00:00Z"},
    {"phoneNumber": LINE, "specifiedDate": 20241031},
    {"phoneNumber": "79161234567", "specifiedDate": "2024-10-31"},
    {"phoneNumber": LINE, "specifiedDate": "2024-10-31", "extra": True},
])
async def test_bodies_outside_the_schema_are_invalid_arguments(make_gateway: HarnessFactory,
                                                               body: object) -> None:
    h = await gateway(make_gateway)
    headers = await two_legged(h)
    response = await (h.client.post(CHECK, headers=headers, json=body) if body is not None
                      else h.client.post(CHECK, headers=headers))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_ARGUMENT"


async def test_the_number_comes_from_a_three_legged_token_or_the_body_never_both(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    line = {"Authorization": f"Bearer {await h.line_token(LINE, SCOPE)}"}
    response = await h.client.post(CHECK, headers=line, json={"specifiedDate": "2023-12-22"})
    assert response.status_code == 200, response.text
    assert response.json() == {"phoneNumberRecycled": False}
    both = await h.client.post(CHECK, headers=line,
                               json={"phoneNumber": LINE, "specifiedDate": "2023-12-22"})
    assert (both.status_code, both.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")
    neither = await h.client.post(CHECK, headers=await two_legged(h),
                                  json={"specifiedDate": "2023-12-22"})
    assert (neither.status_code, neither.json()["code"]) == (422, "MISSING_IDENTIFIER")


async def test_unknown_and_not_served_numbers(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"session_header": "X-Network-Session",
                                            "not_applicable_prefixes": ["+7903"]})
    unknown = await h.client.post(CHECK, headers=await two_legged(h),
                                  json={"phoneNumber": "+79990000000",
                                        "specifiedDate": "2023-12-22"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")
    hosted = await h.client.post(CHECK, headers=await two_legged(h),
                                 json={"phoneNumber": NEW_LINE, "specifiedDate": "2023-12-22"})
    assert (hosted.status_code, hosted.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")


async def test_tokens_missing_invalid_expired_or_without_the_scope_are_refused(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    past = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    expired = AccessTokenIssuer(h.app.state.signing_key, issuer=BASE_URL, audience=BASE_URL,
                                lifetime=60, clock=past).issue("chat", SCOPE).access_token
    body = {"phoneNumber": LINE, "specifiedDate": "2023-12-22"}
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": f"Bearer {expired}"}):
        response = await h.client.post(CHECK, headers=headers, json=body)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "UNAUTHENTICATED"
    other = {"Authorization": f"Bearer {await h.token('other')}"}
    response = await h.client.post(CHECK, headers=other, json=body)
    assert (response.status_code, response.json()["code"]) == (403, "PERMISSION_DENIED")
