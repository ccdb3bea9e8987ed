"""Concurrent identifications committed together, on SQLite and PostgreSQL: each caller's
answer is durable when it is returned, and a caller refused inside the shared transaction
(its quota) leaves nothing behind while the others are answered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import Connection, func, select

from numident.core.identification import Result
from numident.errors import TooManyRequests
from numident.operator.identification import Item, Job, Organizer, answer_together
from numident.operator.organizers import Limits, find, set_limits
from numident.operator.tables import audit, identification_requests, organizer_daily_items, usages

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def stored(h: Harness) -> dict[str, list[str]]:
    """Per request id: the actions of its audit rows, as committed."""
    with h.gateway.engine.connect() as conn:
        ids = conn.execute(select(identification_requests.c.request_id)).scalars().all()
        actions: dict[str, list[str]] = {i: [] for i in ids}
        for row in conn.execute(select(audit.c.request_id, audit.c.action)
                                .where(audit.c.request_id.is_not(None)).order_by(audit.c.id)):
            actions.setdefault(row.request_id, []).append(row.action)
    return actions


async def test_concurrent_requests_are_each_answered_and_durable(make_gateway: HarnessFactory
                                                                 ) -> None:
    """Twelve requests at once, of two organizers and three answers: each gets its own
    answer, and its request, audit and usage rows are committed when it is returned."""
    h = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    h.register("mail")
    auth = {name: await h.auth(name) for name in ("chat", "mail")}
    numbers = ["+79161234567", "+79161234569", "+79031112233", "+79990000000"]
    cases = [(name, numbers[n % 4], f"{name}-{n}") for n in range(6) for name in auth]

    async def one(name: str, number: str, code: str) -> dict[str, str]:
        response = await h.client.post("/identification/v1/requests", headers=auth[name],
                                       json={"phoneNumber": number, "identificationCode": code})
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        assert body["requestId"] in stored(h)  # committed before it was sent
        return body

    answers = await asyncio.gather(*(one(*case) for case in cases))
    assert [(a["phoneNumber"], a["identificationCode"], a["result"]) for a in answers] == [
        (number, code, "confirmed" if number in ("+79161234567", "+79031112233")
         else "not_found") for _, number, code in cases]
    actions = stored(h)
    assert len(actions) == 12
    assert all(actions[a["requestId"]] == (
        ["request_received", "answered", "usage_recorded"] if a["result"] == "confirmed"
        else ["request_received", "answered"]) for a in answers)
    with h.gateway.engine.connect() as conn:
        recorded = sorted(conn.execute(select(usages.c.identification_code)
                                       .where(usages.c.status == "active")).scalars())
    assert recorded == sorted(a["identificationCode"] for a in answers
                              if a["result"] == "confirmed")


async def test_requests_at_once_never_pass_the_daily_quota(make_gateway: HarnessFactory
                                                           ) -> None:
    """Eight requests at once against a quota of five: five are answered, three refused
    with QUOTA_EXCEEDED, and exactly five requests and five counted items are stored."""
    h = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    set_limits(h.gateway.engine, "chat", Limits(None, 5))
    auth = await h.auth()
    responses = await asyncio.gather(*(
        h.client.post("/identification/v1/requests", headers=auth,
                      json={"phoneNumber": "+79161234567", "identificationCode": f"u-{n}"})
        for n in range(8)))
    codes = sorted((r.status_code, r.json().get("code", "")) for r in responses)
    assert codes == [(200, "")] * 5 + [(429, "QUOTA_EXCEEDED")] * 3
    assert len(stored(h)) == 5
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.sum(organizer_daily_items.c.item_count))).scalar() == 5


async def test_a_job_refused_in_the_shared_transaction_fails_alone(make_gateway: HarnessFactory
                                                                   ) -> None:
    """answer_together: a job whose check inside the transaction raises is written again
    apart and refused, leaving no row; the other jobs of its organizer and another
    organizer's are answered in the same commit."""
    h = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    h.register("mail")
    engine = h.gateway.engine
    chat, mail = (Organizer(find(engine, n).id, n) for n in ("chat", "mail"))

    def refuse(_: Connection) -> None:
        raise TooManyRequests("over the quota", retry_after=1, code="QUOTA_EXCEEDED")

    jobs = [Job(chat, [Item("+79161234567", "a")], NOW),
            Job(chat, [Item("+79031112233", "b"), Item("+79161234569", "c")], NOW, refuse),
            Job(mail, [Item("+79161234567", "d")], NOW - timedelta(seconds=1)),
            Job(chat, [Item("+79990000000", "e")], NOW)]
    outcomes = answer_together(engine, jobs, NOW)
    assert isinstance(outcomes[1], TooManyRequests)
    answered = [o for o in outcomes if not isinstance(o, Exception)]
    assert [[(v.identification_code, v.result) for v in views] for views in answered] == [
        [("a", Result.CONFIRMED)], [("d", Result.CONFIRMED)], [("e", Result.NOT_FOUND)]]
    assert [v.received_at for v in answered[1]] == [NOW - timedelta(seconds=1)]
    with engine.connect() as conn:
        codes = sorted(conn.execute(select(identification_requests.c.identification_code))
                       .scalars())
        active = sorted(conn.execute(select(usages.c.identification_code)).scalars())
        audited = set(conn.execute(select(audit.c.request_id)).scalars())
    assert codes == ["a", "d", "e"]
    assert active == ["a", "d"]
    assert {v.request_id for views in answered for v in views} <= audited
