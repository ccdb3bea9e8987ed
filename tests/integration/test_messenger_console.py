"""The messenger's console in process, after a known exchange with a real gateway."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import anyio
import httpx2
import pytest
from messenger_fixtures import ADMIN_TOKEN, ALPHA, MESSENGER_URL, Exchange, exchange, identify

from console_login import logged_in
from numident.core.notices import NoticeType
from numident.messenger.bulk import load
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.events import record_event

pytestmark = pytest.mark.anyio



def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{re.escape(element_id)}">([^<]*)<', html)
    assert found is not None, element_id
    return found.group(1)


def cells(html: str, row_id: str) -> list[str]:
    row = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', html, re.S)
    assert row is not None, row_id
    return [re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)]


def console(setup: Exchange) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=setup.messenger),
                              base_url=MESSENGER_URL)


async def test_the_console_needs_the_messenger_admin_token(database_url: str,
                                                           tmp_path: Path) -> None:
    """Not the backend's API token: the staff's own; pages redirect, fragments are 401."""
    async with exchange(database_url, tmp_path) as setup, console(setup) as client:
        assert (await client.get("/console/bulk")).status_code == 303
        refused = await client.post("/console/logout")
        assert (refused.status_code, refused.json()["code"]) == (401,
                                                                 "CONSOLE_LOGIN_REQUIRED")
        form = await client.get("/console/login")
        assert form.status_code == 200
        await logged_in(client, ADMIN_TOKEN, "/console/bulk")
        out = await client.post("/console/logout")
        assert out.status_code == 403  # a logout is a change too: it needs the token


async def test_accounts_in_flight_health_notices_and_bulk_after_a_known_exchange(
        database_url: str, tmp_path: Path) -> None:
    """alice identified then blocked by a termination, bob refused; in the deferred
    gateway's queue nothing is left; three accounts loaded for the bulk identification."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api, \
            console(setup) as client:
        assert (await identify(setup, api, "alice", "+79161234567"))["state"] == "identified"
        assert (await identify(setup, api, "bob", "+79161234569"))["state"] == "refused"
        assert (await identify(setup, api, "carol", "+79161234568"))["state"] == "identified"
        now = setup.clock.now()
        record_event(setup.gateway_engine, NoticeType.CONTRACT_TERMINATED, "+79161234567",
                     occurred_at=now, recorded_at=now, source="test",
                     notice_source="http://alpha.test", handlers=lifecycle_handlers())
        assert await setup.deliver_notices() == 1
        users = tmp_path / "users.csv"
        users.write_text("account_id,phone_number,possession_proven_at\n"
                         "carol,+79161234568,2026-11-30T12:00:00Z\n"
                         "dave,+79161234566,2026-11-30T12:00:00Z\n"
                         "erin,+79161234565,2026-11-30T12:00:00Z\n", encoding="utf-8")
        service = setup.service
        load(setup.messenger_engine, users, service.identifications.lookup.route_many,
             service.operators, service.store, setup.clock, default_region="RU",
             allowed_regions=frozenset({"RU"}))

        await logged_in(client, ADMIN_TOKEN)
        page = (await client.get("/console/")).text
        shown = {state: figure(page, f"state-{state}") for state in (
            "identified", "refused", "reidentification_required", "pending", "unidentified")}
        assert shown == {"identified": "1", "refused": "1", "reidentification_required": "1",
                         "pending": "0", "unidentified": "0"}
        assert "<title>refused: 1 accounts</title>" in page
        assert "No identification is waiting for an operator." in page
        health = cells(page, f"health-{ALPHA}")
        exchanges = len(setup.to_gateway.requests)
        assert health[0] == "Alpha"
        assert health[1] == str(exchanges)
        assert exchanges >= 3  # a token and one request per account at least
        assert (health[4], health[5]) == ("0", "0")

        notices = (await client.get("/console/notices")).text
        assert figure(notices, "type-contract_terminated") == "1"
        [row] = re.findall(r'<tr class="notice">(.*?)</tr>', notices, re.S)
        texts = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                        row, re.S)]
        assert texts[1:3] == ["Alpha", "contract_terminated"]
        assert texts[4] == "1"

        bulk = (await client.get("/console/bulk")).text
        section = re.search(rf'id="bulk-{ALPHA}".*?</section>', bulk, re.S)
        assert section is not None
        assert re.search(r'<span class="done">(\d+)</span> of <span class="total">(\d+)',
                         section.group(0)).groups() == ("1", "3")  # type: ignore[union-attr]
        assert '<td class="number status-queued">2</td>' in section.group(0)
        assert '<td class="number status-skipped">1</td>' in section.group(0)


async def test_an_identification_waiting_for_a_deferred_answer_is_in_flight(
        database_url: str, tmp_path: Path) -> None:
    """The gateway accepted (202) and the messenger's first poll is held at the gateway."""
    async with exchange(database_url, tmp_path, deferred=True) as setup, setup.api() as api, \
            console(setup) as client:
        polling = asyncio.Event()

        async def hold(request: httpx2.Request) -> None:
            if request.method == "GET":
                polling.set()
                await anyio.sleep_forever()

        setup.to_gateway.before = hold
        await api.put("/messenger/v1/accounts/dave/phone-number",
                      json={"phoneNumber": "+79161234567"})
        await api.post("/messenger/v1/accounts/dave/phone-number/confirm",
                       json={"code": setup.code_sent_to("+79161234567")})
        running = asyncio.ensure_future(setup.service.run_identifications())
        await polling.wait()
        try:
            await logged_in(client, ADMIN_TOKEN)
            page = (await client.get("/console/")).text
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
        assert figure(page, "state-pending") == "1"
        row = cells(page, f"in-flight-{ALPHA}")
        assert row[:3] == ["Alpha", "1", "0"]
        assert row[4].endswith(" UTC")
