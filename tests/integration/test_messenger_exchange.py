"""The whole exchange over HTTP in process: a real gateway and a real messenger service.

Parametrised over SQLite and PostgreSQL by the ``database_url`` fixture.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from messenger_fixtures import (
    MESSENGER_URL,
    NOTICE_URL,
    Exchange,
    exchange,
    identify,
)
from sqlalchemy import func, select

from numident.client.keys import generate_key
from numident.client.signatures import NoticeSigner
from numident.core.notices import NoticeType
from numident.messenger.tables import account_audit
from numident.operator import identification as gateway_requests
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.events import record_event
from numident.operator.tables import identification_requests, usages

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"
NEW_NUMBER = "+79161234568"



def usage_statuses(setup: Exchange) -> dict[tuple[str, str], str]:
    with setup.gateway_engine.connect() as conn:
        rows = conn.execute(select(usages.c.identification_code, usages.c.phone_number,
                                   usages.c.status)).all()
    return {(r.identification_code, r.phone_number): r.status for r in rows}


def terminate(setup: Exchange, number: str) -> None:
    now = setup.clock.now()
    record_event(setup.gateway_engine, NoticeType.CONTRACT_TERMINATED, number,
                 occurred_at=now, recorded_at=now, source="test",
                 notice_source="http://alpha.test", handlers=lifecycle_handlers())


async def test_confirmed_subscriber_is_identified_and_can_send(database_url: str,
                                                               tmp_path: Path) -> None:
    """An active subscriber: identified, canSend, and the gateway holds our usage."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        view = await identify(setup, api, "alice", NUMBER)
        assert (view["state"], view["canSend"], view["operator"]) == ("identified", True,
                                                                      "7707083893")
        assert setup.service.can_send("alice") is True
        assert usage_statuses(setup) == {(view["identificationCode"], NUMBER): "active"}


async def test_number_without_contract_is_refused(database_url: str, tmp_path: Path) -> None:
    """A terminated contract answers not_found: refused, and the gateway keeps no usage."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        view = await identify(setup, api, "bob", "+79161234569")
        assert (view["state"], view["canSend"], view["reason"]) == ("refused", False,
                                                                    "NOT_FOUND")
        assert usage_statuses(setup) == {}


async def test_terminated_contract_blocks_messaging_until_reidentified(
        database_url: str, tmp_path: Path) -> None:
    """The gateway's signed notice blocks the account; a new number identifies it again."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        await identify(setup, api, "alice", NUMBER)
        terminate(setup, NUMBER)
        assert await setup.deliver_notices() == 1
        view = (await api.get("/messenger/v1/accounts/alice")).json()
        assert (view["state"], view["canSend"], view["reason"]) == (
            "reidentification_required", False, "CONTRACT_TERMINATED")
        setup.clock.advance(60)
        again = await identify(setup, api, "alice", NEW_NUMBER)
        assert (again["state"], again["canSend"], again["phoneNumber"]) == ("identified", True,
                                                                            NEW_NUMBER)


async def test_number_change_withdraws_the_old_usage(database_url: str,
                                                     tmp_path: Path) -> None:
    """The old code's usage ends at the gateway; the new number has a new, active code."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        old = await identify(setup, api, "alice", NUMBER)
        setup.clock.advance(60)
        new = await identify(setup, api, "alice", NEW_NUMBER)
        assert new["identificationCode"] != old["identificationCode"]
        assert await setup.service.deliver_outbox() == 1
        assert setup.to_gateway.paths("DELETE") == [
            f"/identification/v1/usages/{old['identificationCode']}"]
        statuses = usage_statuses(setup)
        assert statuses[(new["identificationCode"], NEW_NUMBER)] == "active"
        assert statuses[(old["identificationCode"], NUMBER)] != "active"


async def test_forged_notice_is_refused_with_401(database_url: str, tmp_path: Path) -> None:
    """Unsigned, or signed by a key no operator registered: 401, the account untouched."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        view = await identify(setup, api, "alice", NUMBER)
        body = (b'{"specversion":"1.0","id":"forged-1","source":"x","type":'
                b'"org.numident.notice.contract_terminated","data":{"phoneNumber":"'
                + NUMBER.encode() + b'","identificationCode":"'
                + view["identificationCode"].encode() + b'"}}')
        headers = {"Content-Type": "application/cloudevents+json"}
        unsigned = await api.post(NOTICE_URL, content=body, headers=headers)
        forged_headers = {**headers, **NoticeSigner(generate_key()).sign(
            "POST", NOTICE_URL, body, dict(headers))}
        forged = await api.post(NOTICE_URL, content=body, headers=forged_headers)
        assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGNATURE_MISSING")
        assert (forged.status_code, forged.json()["code"]) == (401, "UNKNOWN_KEY")
        assert (await api.get("/messenger/v1/accounts/alice")).json()["state"] == "identified"


async def test_replayed_notice_has_no_second_effect(database_url: str,
                                                    tmp_path: Path) -> None:
    """The very same signed request again: 200 duplicate, no new audit entry."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        await identify(setup, api, "alice", NUMBER)
        terminate(setup, NUMBER)
        await setup.deliver_notices()
        [(_, _, headers, body)] = [r for r in setup.to_messenger.requests if r[0] == "POST"]
        with setup.messenger_engine.connect() as conn:
            audited = conn.execute(select(func.count()).select_from(account_audit)).scalar()
        async with httpx2.AsyncClient(transport=setup.to_messenger) as raw:
            replay = await raw.post(NOTICE_URL, content=body, headers={
                k: v for k, v in headers.items() if k.lower() != "content-length"})
        assert (replay.status_code, replay.json()["duplicate"]) == (200, True)
        with setup.messenger_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(account_audit)).scalar() \
                == audited


async def test_deferred_gateway_is_followed_by_polling(database_url: str,
                                                       tmp_path: Path) -> None:
    """202 pending, GET polls with backoff, the answer arrives on a later poll."""
    async with exchange(database_url, tmp_path, deferred=True) as setup, setup.api() as api:
        polls = 0

        async def answer_on_third_poll(request: httpx2.Request) -> None:
            nonlocal polls
            if request.method == "GET":
                polls += 1
                if polls == 3:
                    request_id = request.url.path.rsplit("/", 1)[1]
                    gateway_requests.answer_pending(setup.gateway_engine, [request_id],
                                                    setup.clock.now())

        setup.to_gateway.before = answer_on_third_poll
        started = setup.clock.now()
        view = await identify(setup, api, "alice", NUMBER)
        assert (view["state"], polls) == ("identified", 3)
        assert (setup.clock.now() - started).total_seconds() == 1 + 2 + 4


async def stalled_at_first_poll(setup: Exchange, api: httpx2.AsyncClient
                                ) -> asyncio.Future[None]:
    """Alice's identification on NUMBER, running, its first poll of the gateway held."""
    polling = asyncio.Event()

    async def stall(request: httpx2.Request) -> None:
        if request.method == "GET":
            polling.set()
            await anyio.sleep_forever()

    setup.to_gateway.before = stall
    await api.put("/messenger/v1/accounts/alice/phone-number", json={"phoneNumber": NUMBER})
    await api.post("/messenger/v1/accounts/alice/phone-number/confirm",
                   json={"code": setup.code_sent_to(NUMBER)})
    running = asyncio.ensure_future(setup.service.run_identifications())
    await polling.wait()
    return running


async def crash(setup: Exchange, running: asyncio.Future[None]) -> None:
    """Stop the messenger mid-work, as a crash would: nothing of it finishes."""
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await setup.service.aclose()


async def after_restart(setup: Exchange, api: httpx2.AsyncClient) -> dict[str, Any]:
    """Start the messenger anew over its database, let it resume, and read alice's account."""
    setup.start_messenger()
    await setup.service.run_identifications()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=setup.messenger),
                                 base_url=MESSENGER_URL, headers=api.headers) as fresh:
        return (await fresh.get("/messenger/v1/accounts/alice")).json()  # type: ignore[no-any-return]


async def test_restart_mid_identification_resumes_the_same_request(
        database_url: str, tmp_path: Path) -> None:
    """A messenger stopped while polling picks the request up again after its restart,
    without sending a second request to the gateway."""
    async with exchange(database_url, tmp_path, deferred=True) as setup, setup.api() as api:
        crashed = await stalled_at_first_poll(setup, api)
        await crash(setup, crashed)

        with setup.gateway_engine.connect() as conn:
            [request_id] = conn.execute(select(identification_requests.c.request_id)).scalars()
        gateway_requests.answer_pending(setup.gateway_engine, [request_id], setup.clock.now())
        setup.to_gateway.before = None
        view = await after_restart(setup, api)
        assert view["state"] == "identified"
        assert setup.to_gateway.paths("POST").count("/identification/v1/requests") == 1
        assert setup.to_gateway.paths("GET")[-1] == f"/identification/v1/requests/{request_id}"


async def test_notice_while_pending_is_applied_not_lost(database_url: str,
                                                        tmp_path: Path) -> None:
    """Confirmed, then the contract ends and its notice arrives before the messenger collects
    the answer: the account is blocked at once, the answer is asked again and refused."""
    async with exchange(database_url, tmp_path, deferred=True) as setup, setup.api() as api:
        notices: list[int] = []

        async def race(request: httpx2.Request) -> None:
            if request.method != "GET":
                return
            request_id = request.url.path.rsplit("/", 1)[1]
            gateway_requests.answer_pending(setup.gateway_engine, [request_id],
                                            setup.clock.now())
            if not notices:
                terminate(setup, NUMBER)
                notices.append(await setup.deliver_notices())
                blocked = (await api.get("/messenger/v1/accounts/alice")).json()
                assert (blocked["state"], blocked["canSend"]) == (
                    "reidentification_required", False)

        setup.to_gateway.before = race
        view = await identify(setup, api, "alice", NUMBER)
        assert notices == [1]
        assert (view["state"], view["canSend"], view["reason"]) == ("refused", False,
                                                                    "NOT_FOUND")
        assert setup.to_gateway.paths("POST").count("/identification/v1/requests") == 2
        with setup.messenger_engine.connect() as conn:
            assert setup.service.store.history(conn, "alice")[-3:] == [
                ("pending", "reidentification_required"),
                ("reidentification_required", "pending"), ("pending", "refused")]


async def test_a_voided_answer_stays_voided_across_a_restart(database_url: str,
                                                             tmp_path: Path) -> None:
    """The notice's effect on the open attempt is stored: after a restart the confirmed
    answer is still asked again, never trusted."""
    async with exchange(database_url, tmp_path, deferred=True) as setup, setup.api() as api:
        crashed = await stalled_at_first_poll(setup, api)
        with setup.gateway_engine.connect() as conn:
            [request_id] = conn.execute(select(identification_requests.c.request_id)).scalars()
        gateway_requests.answer_pending(setup.gateway_engine, [request_id], setup.clock.now())
        terminate(setup, NUMBER)
        assert await setup.deliver_notices() == 1
        await crash(setup, crashed)

        async def answer(request: httpx2.Request) -> None:
            if request.method == "GET":
                gateway_requests.answer_pending(setup.gateway_engine,
                                                [request.url.path.rsplit("/", 1)[1]],
                                                setup.clock.now())

        setup.to_gateway.before = answer
        view = await after_restart(setup, api)
        assert (view["state"], view["reason"]) == ("refused", "NOT_FOUND")
        assert setup.to_gateway.paths("POST").count("/identification/v1/requests") == 2
