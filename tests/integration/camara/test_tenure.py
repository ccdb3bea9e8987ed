"""KYC Tenure: continuous subscription by the current holder since a date, and contract type."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from operator_harness import ADMIN, Harness, HarnessFactory

pytestmark = pytest.mark.anyio
SCOPE = "kyc-tenure:check-tenure"
CHECK = "/kyc-tenure/vwip/check-tenure"
EXPORT = """phone_number,contract_id,status,activated_at,contract_type
+79161234567,C-1,active,2021-03-01,PAYM
+79161234568,C-2,suspended,2022-04-01,payg
+79161234569,C-3,terminated,2019-01-01,Business
+79031112233,C-4,active,2024-06-01,
"""


async def gateway(make_gateway: HarnessFactory, **operator: Any) -> Harness:
    h: Harness = await make_gateway(register=False, **operator)
    h.register("chat", scopes=[SCOPE])
    h.register("other", scopes=["identification"])
    h.import_csv(EXPORT)
    return h


async def check(h: Harness, body: object, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, Any]]:
    return await h.camara(CHECK, SCOPE, body, headers)


async def test_tenure_since_the_date_with_the_exported_contract_type(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    assert await check(h, {"phoneNumber": "+79161234567", "tenureDate": "2021-03-01"}) == \
        (200, {"tenureDateCheck": True, "contractType": "PAYM"})
    assert await check(h, {"phoneNumber": "+79161234567", "tenureDate": "2021-02-28"}) == \
        (200, {"tenureDateCheck": False, "contractType": "PAYM"})
    assert await check(h, {"phoneNumber": "+79161234568", "tenureDate": "2023-07-03"}) == \
        (200, {"tenureDateCheck": True, "contractType": "PAYG"})


async def test_an_unknown_contract_type_is_left_out(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    assert await check(h, {"phoneNumber": "+79031112233", "tenureDate": "2023-07-03"}) == \
        (200, {"tenureDateCheck": False})


async def test_a_terminated_contract_has_no_tenure_and_no_type(make_gateway: HarnessFactory
                                                               ) -> None:
    h = await gateway(make_gateway)
    assert await check(h, {"phoneNumber": "+79161234569", "tenureDate": "2020-01-01"}) == \
        (200, {"tenureDateCheck": False})


async def test_a_new_holder_starts_a_new_tenure_without_the_old_contract_type(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "holder_changed", "phoneNumber": "+79161234567",
        "occurredAt": "2024-09-21T09:00:00Z"})
    assert response.status_code == 201, response.text
    assert await check(h, {"phoneNumber": "+79161234567", "tenureDate": "2023-07-03"}) == \
        (200, {"tenureDateCheck": False})
    assert await check(h, {"phoneNumber": "+79161234567", "tenureDate": "2024-09-21"}) == \
        (200, {"tenureDateCheck": True})


async def test_future_dates_and_dates_beyond_the_threshold_are_out_of_range(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"history_starts": "2015-01-01"})
    tomorrow = (h.clock.now() + timedelta(days=1)).date().isoformat()
    for day in (tomorrow, "2014-12-31"):
        status, body = await check(h, {"phoneNumber": "+79161234567", "tenureDate": day})
        assert (status, body["status"], body["code"]) == (400, 400, "OUT_OF_RANGE")
    today = h.clock.now().date().isoformat()
    assert (await check(h, {"phoneNumber": "+79161234567", "tenureDate": today}))[0] == 200


@pytest.mark.parametrize("body", [
    None, {}, {"phoneNumber": "+79161234567"},
    {"phoneNumber": "+79161234567", "tenureDate": "2023-7-3"},
    {"phoneNumber": "+79161234567", "tenureDate": "2023-07-03", "contractType": "PAYM"},
    {"phoneNumber": "+7916123456789012345", "tenureDate": "2023-07-03"},
])
async def test_bodies_outside_the_schema_are_invalid_arguments(make_gateway: HarnessFactory,
                                                               body: object) -> None:
    h = await gateway(make_gateway)
    status, answer = await check(h, body)
    assert (status, answer["code"]) == (400, "INVALID_ARGUMENT")


async def test_identifier_rules_and_token_refusals(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"session_header": "X-Network-Session",
                                            "not_applicable_prefixes": ["+7903"]})
    line = {"Authorization": f"Bearer {await h.line_token('+79161234567', SCOPE)}",
            "x-correlator": "kt-1"}
    assert await check(h, {"tenureDate": "2022-01-01"}, line) == \
        (200, {"tenureDateCheck": True, "contractType": "PAYM"})
    cases = [
        (line, {"phoneNumber": "+79161234567", "tenureDate": "2022-01-01"},
         422, "UNNECESSARY_IDENTIFIER"),
        (None, {"tenureDate": "2022-01-01"}, 422, "MISSING_IDENTIFIER"),
        (None, {"phoneNumber": "+79990000000", "tenureDate": "2022-01-01"},
         404, "IDENTIFIER_NOT_FOUND"),
        (None, {"phoneNumber": "+79031112233", "tenureDate": "2022-01-01"},
         422, "SERVICE_NOT_APPLICABLE"),
        ({}, {"phoneNumber": "+79161234567", "tenureDate": "2022-01-01"},
         401, "UNAUTHENTICATED"),
        ({"Authorization": f"Bearer {await h.token('other')}"},
         {"phoneNumber": "+79161234567", "tenureDate": "2022-01-01"}, 403, "PERMISSION_DENIED"),
    ]
    for headers, body, status, code in cases:
        got_status, got = await check(h, body, headers)
        assert (got_status, got["status"], got["code"]) == (status, status, code), body
