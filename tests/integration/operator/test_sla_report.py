"""The SLA report: a day of known answers, refusals, notices and deliveries, read back exactly.

The scenario runs on a real gateway (deferred mode, daily quota of 4) under a fake clock, so
that every answer time, refusal and delivery is placed in time; the figures come from the audit
trail alone, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from operator_harness import Harness, HarnessFactory
from sqlalchemy import select

from numident.core.clock import FakeClock
from numident.core.notices import NoticeType
from numident.errors import NotFound
from numident.operator import sla
from numident.operator.sla import OrganizerDay
from numident.operator.tables import audit

pytestmark = pytest.mark.anyio

DAY = date(2026, 3, 2)
NEXT = date(2026, 3, 3)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINES = """phone_number,contract_id,status,activated_at
+79161234567,C-1,active,2021-03-01
+79161234568,C-2,active,2022-04-01
+79161234569,C-3,active,2019-01-01
+79031112233,C-4,active,2024-06-01
+79031112234,C-5,terminated,2020-01-01
"""


def at(clock: FakeClock, hour: int, minute: int, second: int = 0, day: date = DAY) -> None:
    """Move ``clock`` forward to ``day`` ``hour:minute:second`` UTC."""
    target = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    assert target >= clock.now()
    clock.advance((target - clock.now()).total_seconds())


async def ask(h: Harness, number: str, code: str, name: str = "chat") -> int:
    return (await h.identify(number, code, name)).status_code


async def ask_batch(h: Harness, size: int) -> int:
    response = await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                                   json={"requests": [
                                       {"phoneNumber": "+79031112233",
                                        "identificationCode": f"batch-{n}"}
                                       for n in range(size)]})
    return response.status_code


async def scenario(h: Harness, clock: FakeClock) -> None:
    """Day one: chat's answers after 40 s, 30 s and 120 s, one expired, seven items refused;
    other's answer at once and one request never answered. Notices: chat's first delivered
    after 5 s, its second rejected (a dead letter), its third delivered after 25 hours;
    other's delivered after 30 s. Day two: chat's one answer after 5 s."""
    h.import_csv(LINES)
    assert await ask(h, "+79161234567", "u1") == 202
    at(clock, 9, 0, 10)
    assert await ask(h, "+79161234568", "u2") == 202
    at(clock, 9, 0, 40)
    await h.gateway.answer_due_batch()
    at(clock, 9, 1)
    assert await ask(h, "+79161234569", "u3") == 202
    at(clock, 9, 3)
    await h.gateway.answer_due_batch()
    at(clock, 9, 4)
    assert await ask(h, "+79031112234", "u4") == 202  # its check never runs in time
    at(clock, 9, 25)
    await h.gateway.answer_due_batch()
    assert await ask(h, "+79031112233", "o1", "other") == 202
    await h.gateway.answer_due_batch()
    # chat's quota of 4 items is spent: 3 + 1 + 2 + 1 items refused, in three audit entries.
    at(clock, 9, 26)
    assert await ask_batch(h, 3) == 429
    at(clock, 9, 26, 30)
    assert await ask(h, "+79031112233", "u5") == 429
    at(clock, 9, 27, 31)
    assert await ask_batch(h, 2) == 429
    at(clock, 9, 27, 40)
    assert await ask(h, "+79031112233", "u6") == 429
    at(clock, 9, 28)
    h.gateway.limits.flush()
    at(clock, 9, 30)
    assert await ask(h, "+79161234567", "o2", "other") == 202  # never answered

    at(clock, 9, 40)
    h.gateway.record_event(NoticeType.CONTRACT_TERMINATED, "+79161234567", source="cli")
    at(clock, 9, 40, 5)
    assert await h.deliver_notices() == 1
    at(clock, 9, 41)
    h.gateway.record_event(NoticeType.CONTRACT_TERMINATED, "+79161234568", source="cli")
    h.receiver_status = 400
    assert await h.deliver_notices() == 0
    at(clock, 9, 42)
    h.gateway.record_event(NoticeType.CONTRACT_TERMINATED, "+79031112233", source="cli")
    h.receiver_status = 200
    at(clock, 9, 42, 30)
    assert await h.deliver_notices() == 1
    at(clock, 9, 43)
    h.gateway.record_event(NoticeType.SIM_SWAPPED, "+79161234569", source="cli")
    h.receiver_status = 503
    assert await h.deliver_notices() == 0
    at(clock, 10, 43, day=NEXT)
    h.receiver_status = 200
    assert await h.deliver_notices() == 1

    at(clock, 10, 44, day=NEXT)
    assert await ask(h, "+79031112233", "u7") == 202
    at(clock, 10, 44, 5, day=NEXT)
    await h.gateway.answer_due_batch()


async def gateway(make_gateway: HarnessFactory) -> tuple[Harness, FakeClock]:
    clock = FakeClock(START)
    h: Harness = await make_gateway(clock=clock, deferred=True,
                                    limits={"daily_quota": 4, "audit_interval_seconds": 60},
                                    dispatch={"give_up_after_hours": 48})
    h.register("other")
    return h, clock


EXPECTED = [
    OrganizerDay("chat", DAY, requests=4, answered_in_time=3, late=1, open=0, refused=7,
                 answer_p50=40.0, answer_p95=112.0, answer_p99=118.4, notices=3,
                 delivered_in_time=1, dead_letters=1, delivery_p99=89100.05),
    OrganizerDay("chat", NEXT, requests=1, answered_in_time=1, answer_p50=5.0, answer_p95=5.0,
                 answer_p99=5.0),
    OrganizerDay("other", DAY, requests=2, answered_in_time=1, late=1, answer_p50=0.0,
                 answer_p95=0.0, answer_p99=0.0, notices=1, delivered_in_time=1,
                 delivery_p99=30.0),
]


async def test_report_gives_the_scenarios_figures_per_organizer_and_day(
        make_gateway: HarnessFactory) -> None:
    """Answer times, the expired request, the unanswered one, refusals, notices delivered in
    time, late and dead are each counted on the day of their request or notice."""
    h, clock = await gateway(make_gateway)
    await scenario(h, clock)
    report = sla.sla_report(h.gateway.engine, DAY, NEXT, now=clock.now())
    assert report == EXPECTED


async def test_a_request_without_an_answer_is_open_until_its_deadline_passes(
        make_gateway: HarnessFactory) -> None:
    """A minute after it came, a request without an answer is open; once its 20 minutes have
    passed it is late."""
    h, _ = await gateway(make_gateway)
    h.import_csv(LINES)
    assert await ask(h, "+79161234567", "o2", "other") == 202
    early = sla.sla_report(h.gateway.engine, DAY, DAY, now=START + timedelta(minutes=1))
    later = sla.sla_report(h.gateway.engine, DAY, DAY, now=START + timedelta(minutes=21))
    assert [(d.requests, d.open, d.late) for d in early] == [(1, 1, 0)]
    assert [(d.requests, d.open, d.late) for d in later] == [(1, 0, 1)]


async def test_report_keeps_to_the_period_and_the_organizer_asked_for(
        make_gateway: HarnessFactory) -> None:
    """One day gives that day's rows only; an organizer gives its rows only; an organizer
    that is not registered is refused."""
    h, clock = await gateway(make_gateway)
    await scenario(h, clock)
    engine = h.gateway.engine
    assert sla.sla_report(engine, NEXT, NEXT, now=clock.now()) == [EXPECTED[1]]
    assert sla.sla_report(engine, DAY, NEXT, "other", now=clock.now()) == [EXPECTED[2]]
    with pytest.raises(NotFound) as refused:
        sla.sla_report(engine, DAY, NEXT, "nobody", now=clock.now())
    assert refused.value.code == "ORGANIZER_NOT_FOUND"


async def test_deliveries_and_dead_letters_enter_the_audit_trail_once(
        make_gateway: HarnessFactory) -> None:
    """Each notice's final outcome is one audit entry naming the notice, its organizer and
    its attempts; a retry writes none."""
    h, clock = await gateway(make_gateway)
    await scenario(h, clock)
    with h.gateway.engine.connect() as conn:
        written = {r.detail["noticeId"]: r.detail["organizer"] for r in conn.execute(
            select(audit.c.detail).where(audit.c.action.in_(("usage_invalidated",
                                                              "usage_at_risk"))))}
        outcomes = [(r.action, r.detail) for r in conn.execute(
            select(audit.c.action, audit.c.detail)
            .where(audit.c.action.in_(("notice_delivered", "notice_dead")))
            .order_by(audit.c.id))]
    assert [(action, written[d["noticeId"]], d["organizer"], d["attempts"])
            for action, d in outcomes] == [
        ("notice_delivered", "chat", "chat", 1), ("notice_dead", "chat", "chat", 1),
        ("notice_delivered", "other", "other", 1), ("notice_delivered", "chat", "chat", 2)]


async def test_refusals_for_want_of_capacity_are_counted(make_gateway: HarnessFactory) -> None:
    """A deferred gateway whose queue is full refuses with 429; the report counts the items."""
    clock = FakeClock(START)
    h: Harness = await make_gateway(clock=clock, deferred=True, check_seconds=600, workers=1)
    assert (await h.identify("+79161234567", "user-1")).status_code == 202
    assert (await h.identify("+79161234568", "user-2")).status_code == 429
    assert (await h.identify("+79161234568", "user-3")).status_code == 429
    h.gateway.limits.flush()
    entries: list[Any]
    with h.gateway.engine.connect() as conn:
        entries = [r.detail for r in conn.execute(select(audit.c.detail).where(
            audit.c.action == "limit_exceeded").order_by(audit.c.id))]
    assert entries == [{"limit": "capacity", "items": 1, "refused": 1},
                       {"limit": "capacity", "refused": 1}]
    [day] = sla.sla_report(h.gateway.engine, DAY, DAY, now=clock.now())
    assert (day.requests, day.refused, day.open) == (1, 2, 1)
