"""Deferred answers: 202, poll, earliest deadline first, refusal instead of rot, restarts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import select

from numident.core.clock import FakeClock
from numident.core.identification import Result
from numident.operator import identification
from numident.operator.tables import audit

pytestmark = pytest.mark.anyio


async def test_deferred_request_is_accepted_then_answered(make_gateway: HarnessFactory) -> None:
    """The gateway answers 202 with answerDue = receipt + 20 min, then the poll gets the answer."""
    h: Harness = await make_gateway(deferred=True)
    h.import_csv(SUBSCRIBERS)
    accepted = await h.identify("+79161234567", "user-1")
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "pending"
    assert "result" not in body
    assert accepted.headers["location"] == f"/identification/v1/requests/{body['requestId']}"
    poll = await h.client.get(accepted.headers["location"], headers=await h.auth())
    assert poll.json()["status"] == "pending"
    assert await h.gateway.answer_due_batch() is False
    answered = (await h.client.get(accepted.headers["location"], headers=await h.auth())).json()
    assert answered["status"] == "answered"
    assert answered["result"] == "confirmed"
    assert answered["answerDue"] == body["answerDue"]
    assert h.gateway.pending == 0


async def test_repeat_of_a_pending_request_returns_the_same_request(
        make_gateway: HarnessFactory) -> None:
    """Retrying while pending queues nothing new."""
    h: Harness = await make_gateway(deferred=True)
    first = (await h.identify("+79161234567", "user-1")).json()
    second = (await h.identify("+79161234567", "user-1")).json()
    assert first["requestId"] == second["requestId"]
    assert h.gateway.pending == 1


async def test_queue_refuses_work_it_could_not_answer_in_time(make_gateway: HarnessFactory
                                                              ) -> None:
    """When the queue is full the gateway refuses at once with 429 and Retry-After."""
    # Each check takes 10 minutes with one worker: the second request could not be answered
    # before its deadline, so it is refused instead of accepted and answered late.
    h: Harness = await make_gateway(deferred=True, check_seconds=600, workers=1)
    assert (await h.identify("+79161234567", "user-1")).status_code == 202
    refused = await h.identify("+79161234568", "user-2")
    assert refused.status_code == 429
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert int(refused.headers["retry-after"]) > 0
    assert h.gateway.pending == 1
    metrics = (await h.client.get("/metrics")).text
    assert "numident_requests_refused_total 1.0" in metrics


async def test_answers_go_earliest_deadline_first(make_gateway: HarnessFactory) -> None:
    """With more pending than one round takes, the oldest requests are answered first."""
    h: Harness = await make_gateway(deferred=True, workers=1)
    ids = [(await h.identify(f"+7916123456{n}", f"user-{n}")).json()["requestId"]
           for n in range(7)]
    assert await h.gateway.answer_due_batch() is True  # a batch is workers * 4 = 4
    states = [(await h.client.get(f"/identification/v1/requests/{i}",
                                  headers=await h.auth())).json()["status"] for i in ids]
    assert states == ["answered"] * 4 + ["pending"] * 3


async def test_pending_requests_survive_a_restart(make_gateway: HarnessFactory) -> None:
    """A request accepted before a restart is answered by the gateway after it."""
    first: Harness = await make_gateway(deferred=True)
    first.import_csv(SUBSCRIBERS)
    request_id = (await first.identify("+79161234567", "user-1")).json()["requestId"]
    second: Harness = await make_gateway(deferred=True, register=False)
    assert second.gateway.pending == 1
    await second.gateway.answer_due_batch()
    answer = await second.client.get(f"/identification/v1/requests/{request_id}",
                                     headers=await first.auth())
    assert answer.json()["result"] == "confirmed"


async def test_a_claimed_request_is_left_to_its_replica_until_the_lease_expires(
        make_gateway: HarnessFactory) -> None:
    """A second claim skips leased requests; after the lease they are claimable again."""
    h: Harness = await make_gateway(deferred=True, lease_seconds=30)
    request_id = (await h.identify("+79161234567", "user-1")).json()["requestId"]
    now = h.clock.now()
    engine = h.gateway.engine
    assert [i for i, _ in identification.claim_pending(engine, 10, 30, now)] == [request_id]
    assert identification.claim_pending(engine, 10, 30, now + timedelta(seconds=29)) == []
    later = now + timedelta(seconds=31)
    assert [i for i, _ in identification.claim_pending(engine, 10, 30, later)] == [request_id]


async def test_a_request_is_answered_at_most_once(make_gateway: HarnessFactory) -> None:
    """Answering an answered request again writes nothing: no second answer, audit or usage."""
    h: Harness = await make_gateway(deferred=True)
    h.import_csv(SUBSCRIBERS)
    request_id = (await h.identify("+79161234567", "user-1")).json()["requestId"]
    engine = h.gateway.engine
    first = identification.answer_pending(engine, [request_id], h.clock.now())
    assert [v.result for v in first] == [Result.CONFIRMED]
    assert identification.answer_pending(engine, [request_id], h.clock.now()) == []
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit.c.action).order_by(audit.c.id))]
    assert actions.count("answered") == 1
    assert actions.count("usage_recorded") == 1


async def test_overdue_requests_expire_instead_of_delaying_requests_in_time(
        make_gateway: HarnessFactory) -> None:
    """After downtime, requests past answerDue are settled as expired, not answered first.

    Five requests outlive their deadline while the gateway is down; one arrives after it is
    back. The first round answers the one still in time, and the five are expired with a
    reason, in the audit trail, with no identification code kept.
    """
    clock = FakeClock()
    h: Harness = await make_gateway(deferred=True, workers=1, clock=clock)
    h.import_csv(SUBSCRIBERS)
    old = [(await h.identify("+79161234567", f"old-{n}")).json()["requestId"] for n in range(5)]
    clock.advance(21 * 60)
    fresh = (await h.identify("+79031112233", "fresh")).json()["requestId"]
    assert h.gateway.pending == 6
    assert await h.gateway.answer_due_batch() is False
    answer = (await h.client.get(f"/identification/v1/requests/{fresh}",
                                 headers=await h.auth())).json()
    assert (answer["status"], answer["result"]) == ("answered", "confirmed")
    expired = [(await h.client.get(f"/identification/v1/requests/{i}",
                                   headers=await h.auth())).json() for i in old]
    assert {e["status"] for e in expired} == {"expired"}
    assert all("result" not in e and "may be sent again" in e["reason"] for e in expired)
    assert h.gateway.pending == 0
    with h.gateway.engine.connect() as conn:
        rows = conn.execute(select(audit.c.request_id, audit.c.identification_code)
                            .where(audit.c.action == "request_expired")).all()
    assert sorted(r.request_id for r in rows) == sorted(old)
    assert {r.identification_code for r in rows} == {None}
    metrics = (await h.client.get("/metrics")).text
    assert "numident_requests_expired_total 5.0" in metrics


async def test_a_request_whose_check_outlives_its_deadline_is_expired(
        make_gateway: HarnessFactory) -> None:
    """A check that ends after answerDue gives no answer: the request is expired instead."""
    clock = FakeClock()
    h: Harness = await make_gateway(deferred=True, clock=clock, answer_deadline_seconds=10)
    h.import_csv(SUBSCRIBERS)
    request_id = (await h.identify("+79161234567", "user-1")).json()["requestId"]
    [(claimed, _)] = identification.claim_pending(h.gateway.engine, 4, 30, clock.now())
    clock.advance(11)
    [view] = identification.answer_pending(h.gateway.engine, [claimed], clock.now())
    assert (view.request_id, view.status, view.result) == (request_id, "expired", None)


async def test_admission_follows_the_measured_rate_not_the_setting(
        make_gateway: HarnessFactory) -> None:
    """Configured for instant checks, a gateway measured at 1 answer/s refuses a long queue.

    With a 100 s deadline and 75 s of budget, 75 requests fit at 1/s; the 76th is refused at
    once with Retry-After the one second the queue needs to make room.
    """
    clock = FakeClock()
    h: Harness = await make_gateway(deferred=True, clock=clock, workers=1,
                                    answer_deadline_seconds=100)
    started = clock.now()
    clock.advance(1)
    h.gateway.meter.record(started, clock.now(), 1)
    batch = [{"phoneNumber": f"+7916123{n:04d}", "identificationCode": f"u-{n}"}
             for n in range(75)]
    accepted = await h.client.post("/identification/v1/requests/batch",
                                   headers=await h.auth(), json={"requests": batch})
    assert accepted.status_code == 200
    refused = await h.identify("+79161239999", "one-more")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"


async def test_a_refused_organizer_is_accepted_once_the_queue_has_room(
        make_gateway: HarnessFactory) -> None:
    """After Retry-After, with the queue drained meanwhile, the same request is accepted."""
    clock = FakeClock()  # each 1 s check moves it: the gateway measures 1 answer/s
    h: Harness = await make_gateway(deferred=True, clock=clock, workers=1, check_seconds=1,
                                    answer_deadline_seconds=100)
    started = clock.now()
    clock.advance(1)
    h.gateway.meter.record(started, clock.now(), 1)
    batch = [{"phoneNumber": f"+7916123{n:04d}", "identificationCode": f"u-{n}"}
             for n in range(75)]
    await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                        json={"requests": batch})
    refused = await h.identify("+79161239999", "one-more")
    assert refused.status_code == 429
    assert await h.gateway.answer_due_batch() is True  # four answered: room for four more
    assert h.gateway.meter.answers_per_second == 1.0
    clock.advance(int(refused.headers["retry-after"]))
    assert (await h.identify("+79161239999", "one-more")).status_code == 202


async def test_replicas_admit_on_the_sum_of_their_published_rates(
        make_gateway: HarnessFactory) -> None:
    """Each replica publishes its measured rate; another counts it until its validity lapses."""
    clock = FakeClock()
    first: Harness = await make_gateway(deferred=True, clock=clock, workers=1)
    second: Harness = await make_gateway(deferred=True, clock=clock, workers=1, register=False)
    started = clock.now()
    clock.advance(0.5)
    first.gateway.meter.record(started, clock.now(), 1)  # 2 answers/s
    await first.gateway.answer_due_batch()  # publishes, valid for 10 s
    own = second.gateway.meter.answers_per_second
    assert second.gateway.drain_rate(clock.now()) == own + 2.0
    clock.advance(11)  # the first replica has not renewed its rate: it no longer counts
    assert second.gateway.drain_rate(clock.now()) == own
