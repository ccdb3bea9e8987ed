"""The operator console's SLA report and audit chain pages, over the other modules' figures."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import func, select

from console_login import logged_in
from numident.audit.log import audit_log
from numident.audit.sealer import seal
from numident.core.clock import FakeClock
from numident.operator.tables import audit

pytestmark = pytest.mark.anyio
ADMIN_TOKEN = "admin-secret"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)



def cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None, row_id
    return [re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


async def test_the_sla_page_shows_the_reports_figures_per_day(
        make_gateway: HarnessFactory) -> None:
    """Three requests answered at once today: all in time, none late or refused."""
    h: Harness = await make_gateway(clock=FakeClock(T0))
    h.import_csv(SUBSCRIBERS)
    for index in range(3):
        assert (await h.identify("+79161234567", f"u-{index}")).status_code == 200
    await logged_in(h.client, ADMIN_TOKEN, "/console/sla")
    page = await h.client.get("/console/sla")
    assert page.status_code == 200
    row = cells(page.text, "sla-chat-2026-12-01")
    assert row[:6] == ["2026-12-01", "3", "3", "0", "0", "0"]
    assert "<title>2026-12-01: 3 in time</title>" in page.text
    bad = await h.client.get("/console/sla", params={"start": "2026-12-05",
                                                      "end": "2026-12-01"})
    assert bad.status_code == 400
    assert "reversed" in bad.text
    future = await h.client.get("/console/sla", params={"end": "2026-12-02"})
    assert (future.status_code, "future" in future.text) == (400, True)


async def test_the_audit_page_verifies_the_chain_on_request_only_with_the_csrf_token(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway(clock=FakeClock(T0))
    h.import_csv(SUBSCRIBERS)
    assert (await h.identify("+79161234567", "u-1")).status_code == 200
    seal(h.gateway.engine, audit_log("operator"))
    with h.gateway.engine.connect() as conn:
        entries = conn.scalar(select(func.count()).select_from(audit))
    csrf = await logged_in(h.client, ADMIN_TOKEN, "/console/audit")
    assert "has not been verified by this console yet" in (
        await h.client.get("/console/audit")).text
    assert (await h.client.post("/console/audit/verify")).status_code == 403
    done = await h.client.post("/console/audit/verify", data={"csrf_token": csrf})
    assert done.status_code == 303
    page = (await h.client.get("/console/audit")).text
    assert f"Verified up to entry {entries} at 2026-12-01 09:00:00 UTC." in page
