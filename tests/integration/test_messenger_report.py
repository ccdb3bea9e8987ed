"""The messenger's report: a day of known identifications, refusals and blocks, read back exactly.

A real gateway and messenger service talk over HTTP in process under one fake clock, so that
each identification, notice and re-identification is placed in time; the figures come from
``account_audit`` (and the intake's ``received_notices``), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from messenger_fixtures import ALPHA, GATEWAY_URL, Exchange, exchange

from numident.core.notices import NoticeType
from numident.errors import NotFound
from numident.messenger.report import NO_OPERATOR, OperatorDay, messenger_report, resolve_operator
from numident.operator import registry
from numident.operator.bootstrap import lifecycle_handlers

pytestmark = pytest.mark.anyio

LINES = """phone_number,contract_id,status,activated_at
+79161234567,c-4567,active,2024-01-01
+79161234568,c-4568,active,2024-01-01
+79161234569,c-4569,terminated,2024-01-01
+79161234570,c-4570,active,2024-01-01
+79161234571,c-4571,active,2024-01-01
"""


async def identify_after(setup: Exchange, api: httpx2.AsyncClient, account: str, number: str,
                         seconds: float) -> str:
    """Prove possession of ``number``, let ``seconds`` pass, then ask the operator; the
    account's state."""
    put = await api.put(f"/messenger/v1/accounts/{account}/phone-number",
                        json={"phoneNumber": number})
    assert put.status_code == 202, put.text
    confirm = await api.post(f"/messenger/v1/accounts/{account}/phone-number/confirm",
                             json={"code": setup.code_sent_to(number)})
    assert confirm.status_code == 202, confirm.text
    setup.clock.advance(seconds)
    await setup.service.run_identifications()
    return str((await api.get(f"/messenger/v1/accounts/{account}")).json()["state"])


async def gateway_down(request: httpx2.Request) -> None:
    raise httpx2.ConnectError("the gateway is down", request=request)


async def scenario(setup: Exchange, api: httpx2.AsyncClient) -> None:
    """Identified after 7 s and 3 s; refused by the operator, refused for want of one;
    unanswered while the gateway is down; one account blocked by a notice and identified
    again on a new number 62 s later (2 s of it asking); a SIM swap notice blocks nobody."""
    now = setup.clock.now()
    if (now + timedelta(hours=1)).date() != now.date():  # the whole scenario on one UTC day
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        setup.clock.advance((midnight - now).total_seconds() + 1)
    path = setup.sms_file.parent / "lines.csv"
    path.write_text(LINES, encoding="utf-8")
    registry.import_subscribers(setup.gateway_engine, path, now=setup.clock.now(),
                                notice_source=GATEWAY_URL, handlers=lifecycle_handlers())
    assert await identify_after(setup, api, "a1", "+79161234567", 7) == "identified"
    assert await identify_after(setup, api, "a2", "+79161234568", 3) == "identified"
    assert await identify_after(setup, api, "a3", "+79161234569", 0) == "refused"
    # No code goes to a number the plan lists nowhere: possession proven elsewhere, as the
    # CLI's identify does.
    assert (await setup.service.identify_now("a4", "+79031112233", possession_proven=True)
            ).state.value == "refused"
    setup.to_gateway.before = gateway_down  # retried (the fake clock runs) for 20 minutes
    assert await identify_after(setup, api, "a5", "+79161234571", 0) == "unanswered"
    setup.to_gateway.before = None

    gateway = setup.gateway.state.gateway
    gateway.record_event(NoticeType.CONTRACT_TERMINATED, "+79161234567", source="cli")
    gateway.record_event(NoticeType.SIM_SWAPPED, "+79161234568", source="cli")
    assert await setup.deliver_notices() == 2
    assert (await api.get("/messenger/v1/accounts/a1")).json()["state"] == \
        "reidentification_required"
    setup.clock.advance(60)
    assert await identify_after(setup, api, "a1", "+79161234570", 2) == "identified"


async def test_report_gives_the_scenarios_figures_per_operator(database_url: str,
                                                               tmp_path: Path) -> None:
    """Identifications, refusals, the unanswered account, times to identify, notices, the
    block and the time until re-identified, per operator, the unroutable number apart."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        await scenario(setup, api)
        today = setup.clock.now().date()
        report = messenger_report(setup.messenger_engine, today, today,
                                  names={ALPHA: "Alpha"})
    assert report == [
        OperatorDay("Alpha", ALPHA, today, identified=3, refused=1, unanswered=1,
                    identify_p50=3.0, identify_p95=6.6, notices=2, blocked=1, reidentified=1,
                    reidentify_p50=62.0, reidentify_p95=62.0),
        OperatorDay(NO_OPERATOR, None, today, refused=1),
    ]


async def test_report_keeps_to_the_operator_and_the_period(database_url: str,
                                                           tmp_path: Path) -> None:
    """An operator is found by configured name or ИНН; its rows only are given; the day before
    has none; an unknown operator is refused."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        await scenario(setup, api)
        engine = setup.messenger_engine
        today = setup.clock.now().date()
        names = {ALPHA: "Alpha"}
        assert resolve_operator(engine, "Alpha", names) == ALPHA
        assert resolve_operator(engine, ALPHA, {}) == ALPHA
        only = messenger_report(engine, today, today, ALPHA, names=names)
        yesterday = today - timedelta(days=1)
        before = messenger_report(engine, yesterday, yesterday, names=names)
        with pytest.raises(NotFound) as refused:
            resolve_operator(engine, "Beta", names)
    assert [(d.operator, d.identified, d.blocked) for d in only] == [("Alpha", 3, 1)]
    assert before == []
    assert refused.value.code == "OPERATOR_NOT_FOUND"
