"""SIM Swap check and retrieve-date, answered from the registry's SIM-change events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_harness import ADMIN, SESSION_HEADER, Harness, HarnessFactory

from numident.core.clock import FakeClock

pytestmark = pytest.mark.anyio
CHECK, RETRIEVE = "sim-swap:check", "sim-swap:retrieve-date"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SWAPPED, OLD, NEW, NO_SIM, NOT_SERVED = (
    "+79161234567", "+79031112233", "+79035550001", "+79035550002", "+79995550003")
EXPORT = f"""phone_number,contract_id,status,activated_at
{SWAPPED},C-1,active,2021-03-01
{OLD},C-4,active,2024-06-01T08:30:00+00:00
{NEW},C-5,active,{(NOW - timedelta(hours=30)).isoformat()}
{NO_SIM},C-6,active,
{NOT_SERVED},C-7,active,2024-01-01
"""


async def gateway(make_gateway: HarnessFactory, **camara: Any) -> Harness:
    h: Harness = await make_gateway(
        register=False, clock=FakeClock(NOW),
        camara={"session_header": SESSION_HEADER, "not_applicable_prefixes": ["+7999"],
                **camara})
    h.register("bank", scopes=[CHECK, RETRIEVE])
    h.import_csv(EXPORT)
    await swap(h, SWAPPED, NOW - timedelta(hours=5))
    return h


async def swap(h: Harness, number: str, at: datetime) -> None:
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "sim_swapped", "phoneNumber": number, "occurredAt": at.isoformat()})
    assert response.status_code == 201, response.text


async def two_legged(h: Harness, scope: str = f"{CHECK} {RETRIEVE}") -> dict[str, str]:
    return {"Authorization": f"Bearer {await h.token('bank', scope)}", "x-correlator": "ss-1"}


async def post(h: Harness, operation: str, body: object, headers: dict[str, str]) -> Any:
    return await h.client.post(f"/sim-swap/vwip/{operation}", json=body, headers=headers)


async def test_check_answers_whether_the_sim_changed_within_max_age(
        make_gateway: HarnessFactory) -> None:
    """A swap 5 hours ago is within 240 (default), 6 and 2400 hours, not within 4."""
    h = await gateway(make_gateway)
    headers = await two_legged(h)
    cases = [({"phoneNumber": SWAPPED}, True), ({"phoneNumber": SWAPPED, "maxAge": 6}, True),
             ({"phoneNumber": SWAPPED, "maxAge": 4}, False),
             ({"phoneNumber": SWAPPED, "maxAge": 2400}, True),
             ({"phoneNumber": OLD}, False), ({"phoneNumber": OLD, "maxAge": 2400}, False),
             ({"phoneNumber": NEW}, True), ({"phoneNumber": NEW, "maxAge": 29}, False),
             ({"phoneNumber": NO_SIM, "maxAge": 1}, False)]
    for body, swapped in cases:
        response = await post(h, "check", body, headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"swapped": swapped}, body
        assert response.headers["x-correlator"] == "ss-1"
        assert response.headers["content-type"] == "application/json"


async def test_retrieve_date_is_the_latest_swap_or_else_the_activation(
        make_gateway: HarnessFactory) -> None:
    """The last swap; the SIM's activation when none was recorded; null without a SIM."""
    h = await gateway(make_gateway)
    headers = await two_legged(h)
    expected = {SWAPPED: "2026-03-01T07:00:00Z", OLD: "2024-06-01T08:30:00Z",
                NEW: "2026-02-28T06:00:00Z", NO_SIM: None}
    for number, latest in expected.items():
        response = await post(h, "retrieve-date", {"phoneNumber": number}, headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"latestSimChange": latest}, number


async def test_a_late_event_about_an_older_swap_does_not_hide_the_latest(
        make_gateway: HarnessFactory) -> None:
    """Events may arrive out of order: the answer is the latest swap ever recorded."""
    h = await gateway(make_gateway)
    await swap(h, SWAPPED, NOW - timedelta(days=20))
    response = await post(h, "retrieve-date", {"phoneNumber": SWAPPED}, await two_legged(h))
    assert response.json() == {"latestSimChange": "2026-03-01T07:00:00Z"}


async def test_a_monitored_period_hides_older_changes_and_bounds_max_age(
        make_gateway: HarnessFactory) -> None:
    """With 30 monitored days, an older change is null with monitoredPeriod, and a maxAge
    above 720 hours is OUT_OF_RANGE."""
    h = await gateway(make_gateway, sim_swap_monitored_days=30)
    headers = await two_legged(h)
    old = await post(h, "retrieve-date", {"phoneNumber": OLD}, headers)
    recent = await post(h, "retrieve-date", {"phoneNumber": SWAPPED}, headers)
    at_limit = await post(h, "check", {"phoneNumber": SWAPPED, "maxAge": 720}, headers)
    beyond = await post(h, "check", {"phoneNumber": SWAPPED, "maxAge": 721}, headers)
    assert old.json() == {"latestSimChange": None, "monitoredPeriod": 30}
    assert recent.json() == {"latestSimChange": "2026-03-01T07:00:00Z"}
    assert at_limit.json() == {"swapped": True}
    assert (beyond.status_code, beyond.json()["code"]) == (400, "OUT_OF_RANGE")
    assert "30 days" in beyond.json()["message"]


@pytest.mark.parametrize(("body", "code"), [
    ({"phoneNumber": SWAPPED, "maxAge": 100000}, "OUT_OF_RANGE"),
    ({"phoneNumber": SWAPPED, "maxAge": 2401}, "OUT_OF_RANGE"),
    ({"phoneNumber": SWAPPED, "maxAge": 0}, "INVALID_ARGUMENT"),
    ({"phoneNumber": SWAPPED, "maxAge": "24"}, "INVALID_ARGUMENT"),
    ({"phoneNumber": SWAPPED, "maxAge": 2.5}, "INVALID_ARGUMENT"),
    ({"phoneNumber": "79161234567"}, "INVALID_ARGUMENT"),
    ({"phoneNumber": SWAPPED, "extra": True}, "INVALID_ARGUMENT"),
])
async def test_check_refuses_bodies_outside_the_schema(make_gateway: HarnessFactory,
                                                       body: dict[str, Any], code: str) -> None:
    h = await gateway(make_gateway)
    response = await post(h, "check", body, await two_legged(h))
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert response.json()["code"] == code


async def test_the_line_comes_from_the_token_or_the_body_never_both_or_neither(
        make_gateway: HarnessFactory) -> None:
    """A three-legged token names the line; a two-legged one needs it in the body."""
    h = await gateway(make_gateway)
    line = {"Authorization": "Bearer "
            + await h.line_token(SWAPPED, f"{CHECK} {RETRIEVE}", name="bank")}
    by_token = await post(h, "retrieve-date", {}, line)
    checked = await post(h, "check", {"maxAge": 4}, line)
    both = await post(h, "check", {"phoneNumber": SWAPPED}, line)
    neither = await post(h, "retrieve-date", {}, await two_legged(h))
    assert by_token.json() == {"latestSimChange": "2026-03-01T07:00:00Z"}
    assert checked.json() == {"swapped": False}
    assert (both.status_code, both.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")
    assert (neither.status_code, neither.json()["code"]) == (422, "MISSING_IDENTIFIER")


async def test_unknown_and_unserved_lines_are_refused(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    headers = await two_legged(h)
    unknown = await post(h, "check", {"phoneNumber": "+79035559999"}, headers)
    unserved = await post(h, "retrieve-date", {"phoneNumber": NOT_SERVED}, headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "IDENTIFIER_NOT_FOUND")
    assert (unserved.status_code, unserved.json()["code"]) == (422, "SERVICE_NOT_APPLICABLE")


async def test_tokens_are_required_and_must_grant_the_operation(
        make_gateway: HarnessFactory) -> None:
    """No or a forged token is 401; a token for check only cannot retrieve the date."""
    h = await gateway(make_gateway)
    body = {"phoneNumber": SWAPPED}
    missing = await h.client.post("/sim-swap/vwip/check", json=body)
    forged = await post(h, "check", body, {"Authorization": "Bearer not.a.token"})
    check_only = await two_legged(h, CHECK)
    allowed = await post(h, "check", body, check_only)
    denied = await post(h, "retrieve-date", body, check_only)
    assert (missing.status_code, missing.json()["code"]) == (401, "UNAUTHENTICATED")
    assert (forged.status_code, forged.json()["code"]) == (401, "UNAUTHENTICATED")
    assert allowed.status_code == 200
    assert (denied.status_code, denied.json()["code"]) == (403, "PERMISSION_DENIED")


async def test_the_umbrella_scope_grants_both_operations(make_gateway: HarnessFactory) -> None:
    """The specification accepts scope sim-swap as well as each operation's own."""
    h = await gateway(make_gateway)
    h.register("bank", scopes=["sim-swap"])
    umbrella = await two_legged(h, "sim-swap")
    checked = await post(h, "check", {"phoneNumber": SWAPPED}, umbrella)
    dated = await post(h, "retrieve-date", {"phoneNumber": SWAPPED}, umbrella)
    assert (checked.status_code, checked.json()) == (200, {"swapped": True})
    assert dated.status_code == 200
    assert dated.json()["latestSimChange"]


async def test_each_api_serves_its_own_openapi_document(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    document = (await h.client.get("/sim-swap/vwip/openapi.json")).json()
    assert set(document["paths"]) == {"/sim-swap/vwip/check", "/sim-swap/vwip/retrieve-date"}
    max_age = document["components"]["schemas"]["CreateCheckSimSwap"]["properties"]["maxAge"]
    assert (max_age["default"], max_age["minimum"], max_age["maximum"]) == (240, 1, 2400)
