"""The identification API of SPEC, on SQLite and PostgreSQL, over HTTP in process."""

from __future__ import annotations

import pytest
from operator_harness import ADMIN, SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from numident.operator.tables import audit, identification_requests, usages

pytestmark = pytest.mark.anyio


def count(h: Harness, table: object) -> int:
    with h.gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def usage_rows(h: Harness) -> list[tuple[str, str, str]]:
    with h.gateway.engine.connect() as conn:
        return [(r.identification_code, r.phone_number, r.status) for r in conn.execute(
            select(usages).order_by(usages.c.id))]


async def test_active_contract_is_confirmed_and_usage_recorded(make_gateway: HarnessFactory
                                                              ) -> None:
    """An active subscriber's number is confirmed at once and its usage is recorded."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    response = await h.identify("+7 916 123-45-67", "user-1")
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == "confirmed"
    assert body["status"] == "answered"
    assert body["phoneNumber"] == "+79161234567"
    assert body["identificationCode"] == "user-1"
    assert body["receivedAt"] <= body["answeredAt"] < body["answerDue"]
    assert usage_rows(h) == [("user-1", "+79161234567", "active")]


@pytest.mark.parametrize(("number", "result"), [
    ("+79161234568", "confirmed"),   # suspended: the contract is still in force
    ("+79161234569", "not_found"),   # terminated
    ("+79990000000", "not_found"),   # never a subscriber here
])
async def test_answer_follows_the_contract(make_gateway: HarnessFactory, number: str,
                                           result: str) -> None:
    """Only a contract in force confirms; not_found keeps no usage record."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    response = await h.identify(number, "user-9")
    assert response.json()["result"] == result
    assert len(usage_rows(h)) == (1 if result == "confirmed" else 0)


async def test_not_found_keeps_the_code_only_in_the_request_audit(make_gateway: HarnessFactory
                                                                  ) -> None:
    """On not_found the answer's audit entry carries no identification code."""
    h: Harness = await make_gateway()
    await h.identify("+79990000000", "ghost-1")
    with h.gateway.engine.connect() as conn:
        entries = conn.execute(select(audit.c.action, audit.c.identification_code)
                               .order_by(audit.c.id)).all()
    assert [(e.action, e.identification_code) for e in entries] == [
        ("request_received", "ghost-1"), ("answered", None)]


async def test_repeated_request_refreshes_the_usage_instead_of_duplicating(
        make_gateway: HarnessFactory) -> None:
    """The same number and code twice give the same answer and one usage record."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    first = (await h.identify("+79161234567", "user-1")).json()
    second = (await h.identify("+79161234567", "user-1")).json()
    assert first["result"] == second["result"] == "confirmed"
    assert usage_rows(h) == [("user-1", "+79161234567", "active")]
    with h.gateway.engine.connect() as conn:
        row = conn.execute(select(usages.c.since, usages.c.last_confirmed_at)).one()
    assert row.since < row.last_confirmed_at


async def test_code_confirmed_on_a_new_number_withdraws_the_old_usage(
        make_gateway: HarnessFactory) -> None:
    """A user who moved to another number of this operator keeps one active usage."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "user-1")
    await h.identify("+79031112233", "user-1")
    assert usage_rows(h) == [("user-1", "+79161234567", "withdrawn"),
                             ("user-1", "+79031112233", "active")]


async def test_organizer_reads_only_its_own_requests(make_gateway: HarnessFactory) -> None:
    """Another organizer's request id is answered 404, as if it did not exist."""
    h: Harness = await make_gateway()
    h.register("rival")
    h.import_csv(SUBSCRIBERS)
    request_id = (await h.identify("+79161234567", "user-1")).json()["requestId"]
    own = await h.client.get(f"/identification/v1/requests/{request_id}",
                             headers=await h.auth("chat"))
    other = await h.client.get(f"/identification/v1/requests/{request_id}",
                               headers=await h.auth("rival"))
    assert own.status_code == 200
    assert own.json()["result"] == "confirmed"
    assert other.status_code == 404
    assert other.json()["code"] == "REQUEST_NOT_FOUND"


async def test_withdrawal_ends_only_the_callers_usage(make_gateway: HarnessFactory) -> None:
    """DELETE of a usage ends the caller's record; another organizer's stays active."""
    h: Harness = await make_gateway()
    h.register("rival")
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "shared-code", "chat")
    await h.identify("+79161234567", "shared-code", "rival")
    response = await h.client.delete("/identification/v1/usages/shared-code",
                                      headers=await h.auth("rival"))
    assert response.status_code == 204
    assert sorted(r[2] for r in usage_rows(h)) == ["active", "withdrawn"]
    again = await h.client.delete("/identification/v1/usages/shared-code",
                                  headers=await h.auth("rival"))
    assert again.status_code == 404
    assert again.json()["code"] == "USAGE_NOT_FOUND"


@pytest.mark.parametrize(("body", "code"), [
    ({"phoneNumber": "+7916abc4567", "identificationCode": "u"}, "INVALID_PHONE_NUMBER"),
    ({"phoneNumber": "+7916", "identificationCode": "u"}, "INVALID_PHONE_NUMBER"),
    ({"phoneNumber": "79161234567", "identificationCode": "u"}, "INVALID_PHONE_NUMBER"),
    ({"phoneNumber": "+7٩١٦١٢٣٤٥٦٧", "identificationCode": "u"}, "INVALID_PHONE_NUMBER"),
    ({"phoneNumber": "", "identificationCode": "u"}, "INVALID_PHONE_NUMBER"),
    ({"phoneNumber": "+79161234567", "identificationCode": "no spaces"},
     "INVALID_IDENTIFICATION_CODE"),
    ({"phoneNumber": "+79161234567", "identificationCode": "x" * 129},
     "INVALID_IDENTIFICATION_CODE"),
    ({"phoneNumber": "+79161234567", "identificationCode": "u", "extra": 1}, "INVALID_ARGUMENT"),
    ({"phoneNumber": 79161234567, "identificationCode": "u"}, "INVALID_ARGUMENT"),
    ({"identificationCode": "u"}, "INVALID_ARGUMENT"),
    ([], "INVALID_ARGUMENT"),
])
async def test_bad_requests_get_400_and_write_nothing(make_gateway: HarnessFactory,
                                                      body: object, code: str) -> None:
    """Invalid numbers, codes, unknown fields and wrong types are 400s with the error body."""
    h: Harness = await make_gateway()
    response = await h.client.post("/identification/v1/requests", json=body,
                                   headers=await h.auth())
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["status"] == 400
    assert count(h, identification_requests) == 0
    assert count(h, audit) == 0


async def test_malformed_and_oversized_bodies_are_refused(make_gateway: HarnessFactory) -> None:
    """Broken JSON and bodies over the limit are 400s, never 500s."""
    h: Harness = await make_gateway(max_body_bytes=2048)
    headers = {**await h.auth(), "content-type": "application/json"}
    broken = await h.client.post("/identification/v1/requests", content=b'{"phoneNumber": ',
                                 headers=headers)
    huge = await h.client.post("/identification/v1/requests", content=b" " * 4096,
                               headers=headers)
    assert (broken.status_code, broken.json()["code"]) == (400, "INVALID_ARGUMENT")
    assert (huge.status_code, huge.json()["code"]) == (400, "PAYLOAD_TOO_LARGE")
    assert count(h, identification_requests) == 0


async def test_batch_answers_each_item_and_refuses_bad_ones_alone(
        make_gateway: HarnessFactory) -> None:
    """A batch answers good items and reports bad ones by index."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    response = await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                                   json={"requests": [
                                       {"phoneNumber": "+79161234567", "identificationCode": "a"},
                                       {"phoneNumber": "bad", "identificationCode": "b"},
                                       {"phoneNumber": "+79161234569", "identificationCode": "c"},
                                   ]})
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert results[0]["result"] == "confirmed"
    assert results[1]["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert results[2]["result"] == "not_found"


async def test_batch_takes_at_most_a_thousand_items(make_gateway: HarnessFactory) -> None:
    """1000 items are answered; 1001 are refused whole."""
    h: Harness = await make_gateway()
    items = [{"phoneNumber": f"+7916{n:07d}", "identificationCode": f"u{n}"}
             for n in range(1001)]
    ok = await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                             json={"requests": items[:1000]})
    too_many = await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                                   json={"requests": items})
    assert ok.status_code == 200
    assert len(ok.json()["results"]) == 1000
    assert too_many.status_code == 400
    assert count(h, identification_requests) == 1000


async def test_correlator_is_echoed(make_gateway: HarnessFactory) -> None:
    """The x-correlator header comes back on answers and on errors."""
    h: Harness = await make_gateway()
    headers = {**await h.auth(), "x-correlator": "req-42"}
    ok = await h.client.post("/identification/v1/requests", headers=headers,
                             json={"phoneNumber": "+79161234567", "identificationCode": "u"})
    bad = await h.client.post("/identification/v1/requests", headers=headers, json={})
    assert ok.headers["x-correlator"] == bad.headers["x-correlator"] == "req-42"
    camara = "b4333c46-49c0:4f62;80d7/{f0ef}<930f1c46>"
    every_allowed = await h.client.get("/healthz", headers={"x-correlator": camara})
    assert every_allowed.headers["x-correlator"] == camara
    for unsafe in ("a b", "x" * 257, "é"):
        refused = await h.client.get("/healthz", headers={"x-correlator": unsafe.encode()})
        assert "x-correlator" not in refused.headers


async def test_audit_trail_is_append_only(make_gateway: HarnessFactory) -> None:
    """The database itself refuses to change or delete audit entries."""
    h: Harness = await make_gateway()
    await h.identify("+79161234567", "user-1")
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
        with pytest.raises(Exception, match="append-only"), h.gateway.engine.begin() as conn:
            conn.execute(text(statement))
    assert count(h, audit) == 2


async def test_metrics_count_answers_and_late_answers(make_gateway: HarnessFactory) -> None:
    """/metrics exposes the answer-time histogram and the late-answer counter."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "user-1")
    await h.identify("+79990000000", "user-2")
    metrics = (await h.client.get("/metrics")).text
    assert 'numident_answers_total{result="confirmed"} 1.0' in metrics
    assert 'numident_answers_total{result="not_found"} 1.0' in metrics
    assert "numident_answer_seconds_count 2.0" in metrics
    assert "numident_answers_late_total 0.0" in metrics
    health = await h.client.get("/healthz")
    assert health.json() == {"status": "ok", "pendingRequests": 0}


async def test_admin_api_needs_the_admin_credential(make_gateway: HarnessFactory) -> None:
    """An organizer's token does not open the admin API; the admin token does."""
    h: Harness = await make_gateway()
    organizer = await h.client.get("/admin/v1/notices", headers=await h.auth())
    admin = await h.client.get("/admin/v1/notices", headers=ADMIN)
    assert organizer.status_code == 401
    assert organizer.json()["code"] == "INVALID_TOKEN"
    assert admin.status_code == 200
    assert admin.json()["counts"]["pending"] == 0


async def test_one_code_on_two_numbers_in_one_batch_leaves_one_active_usage(
        make_gateway: HarnessFactory) -> None:
    """Items of one batch take effect in order: the later number's usage is the active one."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    response = await h.client.post("/identification/v1/requests/batch", headers=await h.auth(),
                                   json={"requests": [
                                       {"phoneNumber": "+79161234567", "identificationCode": "u"},
                                       {"phoneNumber": "+79031112233", "identificationCode": "u"},
                                   ]})
    assert [r["result"] for r in response.json()["results"]] == ["confirmed", "confirmed"]
    assert usage_rows(h) == [("u", "+79161234567", "withdrawn"), ("u", "+79031112233", "active")]
    with h.gateway.engine.connect() as conn:
        withdrawn = conn.execute(select(audit.c.phone_number, audit.c.detail)
                                 .where(audit.c.action == "usage_withdrawn")).all()
    assert [(w.phone_number, w.detail) for w in withdrawn] == [
        ("+79161234567", {"reason": "number_changed"})]


async def test_the_database_refuses_a_second_active_usage_of_a_code(
        make_gateway: HarnessFactory) -> None:
    """One active usage per (organizer, code) is a constraint of the schema, not of the code."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "user-1")
    row = {"organizer_id": 1, "identification_code": "user-1", "phone_number": "+79031112233",
           "status": "active", "since": h.clock.now(), "last_confirmed_at": h.clock.now()}
    with pytest.raises(IntegrityError), h.gateway.engine.begin() as conn:
        conn.execute(usages.insert(), [row])
    with h.gateway.engine.begin() as conn:  # an ended usage of the same code is fine
        conn.execute(usages.insert(), [{**row, "status": "withdrawn"}])
    assert sorted(usage_rows(h)) == [("user-1", "+79031112233", "withdrawn"),
                                     ("user-1", "+79161234567", "active")]
