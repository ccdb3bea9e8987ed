"""Lifecycle events end usages and notify every organizer that recorded them, durably."""

from __future__ import annotations

import json

import pytest
from operator_harness import ADMIN, SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import select

from numident.client.signatures import NoticeVerifier
from numident.core.clock import FakeClock, SystemClock
from numident.core.notices import NoticeType
from numident.operator.tables import outbox, subscriber_history, subscribers, usages

pytestmark = pytest.mark.anyio


def usage_status(h: Harness) -> dict[str, str]:
    with h.gateway.engine.connect() as conn:
        return {f"{r.organizer_id}:{r.identification_code}": r.status
                for r in conn.execute(select(usages))}


async def event(h: Harness, kind: str, number: str, **extra: str) -> dict[str, object]:
    response = await h.client.post("/admin/v1/events", headers=ADMIN,
                                   json={"type": kind, "phoneNumber": number, **extra})
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def test_terminated_contract_notifies_every_organizer_with_a_signed_cloudevent(
        make_gateway: HarnessFactory) -> None:
    """Each organizer that recorded the number gets one signed notice; usages end."""
    h: Harness = await make_gateway()
    h.register("rival", "http://127.0.0.1:9/rival/notices")
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user", "chat")
    await h.identify("+79161234567", "rival-user", "rival")
    outcome = await event(h, "contract_terminated", "+79161234567",
                          occurredAt="2026-03-01T10:00:00Z", eventId="billing-77")
    assert outcome["notices"] == 2
    assert await h.deliver_notices() == 2
    by_url = {str(r.url): r for r in h.notices}
    assert set(by_url) == {"http://127.0.0.1:9/chat/notices", "http://127.0.0.1:9/rival/notices"}
    notice = by_url["http://127.0.0.1:9/chat/notices"]
    document = json.loads(notice.content)
    assert document["specversion"] == "1.0"
    assert document["type"] == "org.numident.notice.contract_terminated"
    assert document["data"] == {"phoneNumber": "+79161234567", "identificationCode": "chat-user",
                                "occurredAt": "2026-03-01T10:00:00Z",
                                "reason": "contract_terminated", "eventId": "billing-77"}
    key = h.app.state.signing_key.public()
    verifier = NoticeVerifier(lambda kid: key if kid == key.kid else None, SystemClock())
    assert verifier.verify("POST", str(notice.url), notice.headers, notice.content) == key.kid
    assert set(usage_status(h).values()) == {"invalidated"}
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(subscribers.c.status)).scalars().all().count("terminated") == 2
        changes = conn.execute(select(subscriber_history.c.change)
                               .where(subscriber_history.c.phone_number == "+79161234567")
                               ).scalars().all()
    assert changes == ["import", "contract_terminated"]
    again = await h.identify("+79161234567", "chat-user")
    assert again.json()["result"] == "not_found"


async def test_sim_swap_warns_but_keeps_the_usage(make_gateway: HarnessFactory) -> None:
    """A SIM swap is a notice of risk; the usage stays active."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user")
    await event(h, "sim_swapped", "+79161234567")
    await h.deliver_notices()
    assert json.loads(h.notices[0].content)["type"] == "org.numident.notice.sim_swapped"
    assert set(usage_status(h).values()) == {"active"}
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(subscribers.c.sim_changed_at).where(
            subscribers.c.phone_number == "+79161234567")).scalar_one() is not None


async def test_reassigned_number_confirms_for_the_new_holder_only_after_reidentification(
        make_gateway: HarnessFactory) -> None:
    """Reassignment ends old usages; the number is confirmed again under the new contract."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "old-user")
    await event(h, "number_reassigned", "+79161234567", newContractId="C-99")
    assert set(usage_status(h).values()) == {"invalidated"}
    assert (await h.identify("+79161234567", "new-user")).json()["result"] == "confirmed"


async def test_repeated_event_id_changes_nothing(make_gateway: HarnessFactory) -> None:
    """An event redelivered with the same id queues no second notice."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user")
    first = await event(h, "holder_changed", "+79161234567", eventId="ev-1")
    second = await event(h, "holder_changed", "+79161234567", eventId="ev-1")
    assert (first["notices"], first["duplicate"]) == (1, False)
    assert (second["notices"], second["duplicate"]) == (0, True)


async def test_event_for_an_unknown_number_is_refused(make_gateway: HarnessFactory) -> None:
    """The gateway refuses events about numbers it never served."""
    h: Harness = await make_gateway()
    response = await h.client.post("/admin/v1/events", headers=ADMIN,
                                   json={"type": "contract_terminated",
                                         "phoneNumber": "+79990000000"})
    assert (response.status_code, response.json()["code"]) == (404, "SUBSCRIBER_NOT_FOUND")
    bad = await h.client.post("/admin/v1/events", headers=ADMIN,
                              json={"type": "exploded", "phoneNumber": "+79161234567"})
    assert bad.status_code == 400


async def test_failed_delivery_is_retried_until_the_receiver_accepts(
        make_gateway: HarnessFactory) -> None:
    """A 5xx from the organizer leaves the notice pending; the next attempt delivers it."""
    clock = FakeClock(SystemClock().now())
    h: Harness = await make_gateway(clock=clock)
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user")
    await event(h, "number_ported_out", "+79161234567")
    h.receiver_status = 503
    assert await h.deliver_notices() == 0
    clock.advance(0.5)
    assert await h.deliver_notices() == 0  # backoff: not due yet, not even tried
    assert len(h.notices) == 1
    h.receiver_status = 200
    clock.advance(5)
    assert await h.deliver_notices() == 1
    assert len(h.notices) == 2
    assert json.loads(h.notices[0].content)["id"] == json.loads(h.notices[1].content)["id"]
    with h.gateway.engine.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.attempts)).one()
    assert (row.status, row.attempts) == ("delivered", 2)


async def test_undeliverable_notice_is_dead_lettered_after_a_day_and_can_be_retried(
        make_gateway: HarnessFactory) -> None:
    """After 24 hours of failures a notice is dead, visible, and can be queued again."""
    clock = FakeClock(SystemClock().now())
    h: Harness = await make_gateway(clock=clock)
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user")
    await event(h, "contract_terminated", "+79161234567")
    h.receiver_status = 500
    for _ in range(200):
        await h.deliver_notices()
        clock.advance(3600)
    listing = (await h.client.get("/admin/v1/notices?status=dead", headers=ADMIN)).json()
    assert listing["counts"]["dead"] == 1
    [dead] = listing["notices"]
    assert "HTTP 500" in dead["lastError"]
    attempts = dead["attempts"]
    assert attempts >= 10
    retried = await h.client.post(f"/admin/v1/notices/{dead['id']}/retry", headers=ADMIN)
    assert retried.json() == {"requeued": 1}
    h.receiver_status = 200
    assert await h.deliver_notices() == 1
    kinds = {NoticeType.from_cloudevent_type(json.loads(r.content)["type"]) for r in h.notices}
    assert kinds == {NoticeType.CONTRACT_TERMINATED}
