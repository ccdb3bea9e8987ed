"""Bulk first identification (``messenger.bulk``) against a real gateway over HTTP in process.

Parametrised over SQLite and PostgreSQL by the ``database_url`` fixture.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import httpx2
import pytest
from messenger_fixtures import ALPHA, Exchange, exchange
from sqlalchemy import func, select

from numident.core.accounts import AccountState
from numident.core.notices import NoticeType
from numident.errors import InvalidFile
from numident.messenger.bulk import (
    BulkIdentification,
    Loading,
    RunReport,
    load,
    loading,
    summary,
    write_unidentified,
)
from numident.messenger.tables import account_audit, accounts, bulk_identifications
from numident.operator import identification as gateway_requests
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.events import record_event
from numident.operator.tables import identification_requests, usages

pytestmark = pytest.mark.anyio
BATCH = "/identification/v1/requests/batch"


def write_accounts(tmp_path: Path, rows: list[tuple[str, str]], name: str = "users.csv"
                   ) -> Path:
    path = tmp_path / name
    path.write_text("account_id,phone_number,possession_proven_at\n" + "".join(
        f"{account},{number},2026-11-30T12:00:00Z\n" for account, number in rows),
        encoding="utf-8")
    return path


def load_file(setup: Exchange, path: Path) -> None:
    service = setup.service
    load(setup.messenger_engine, path, service.identifications.lookup.route_many,
         service.operators, service.store, setup.clock, default_region="RU",
         allowed_regions=frozenset({"RU"}))


def streamed(setup: Exchange, path: Path, chunk: int) -> contextlib.AbstractContextManager[Loading]:
    service = setup.service
    return loading(setup.messenger_engine, path, service.identifications.lookup.route_many,
                   service.operators, service.store, setup.clock, default_region="RU",
                   allowed_regions=frozenset({"RU"}), chunk=chunk)


class Bars:
    """A run's progress as told: accounts added and answered per operator, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str, int, int]] = []

    def add(self, inn: str, name: str, accounts: int, answered: int) -> None:
        self.told.append(("add", inn, accounts, answered))

    def advance(self, inn: str, accounts: int) -> None:
        self.told.append(("advance", inn, accounts, 0))


class Sleeps:
    """The job's sleep in test mode: records each wait and moves the fake clock instead."""

    def __init__(self, setup: Exchange) -> None:
        self.setup = setup
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.setup.clock.advance(seconds)


def job(setup: Exchange, sleeps: Sleeps, **options: float) -> BulkIdentification:
    service = setup.service
    return BulkIdentification(setup.messenger_engine, service.operators, service.store,
                              service.outbox, setup.clock, block_on_sim_swap=False,
                              sleep=sleeps, poll_seconds=5, **options)  # type: ignore[arg-type]


def states(setup: Exchange) -> dict[str, tuple[str, str | None]]:
    with setup.messenger_engine.connect() as conn:
        return {r.account_id: (r.state, r.reason)
                for r in conn.execute(select(accounts.c.account_id, accounts.c.state,
                                             accounts.c.reason))}


async def test_bulk_run_identifies_each_account_at_its_operator(database_url: str,
                                                                tmp_path: Path) -> None:
    """Active lines become identified, others refused with the reason, all in one batch."""
    async with exchange(database_url, tmp_path) as setup:
        path = write_accounts(tmp_path, [("u1", "+79161234567"), ("u2", "89161234568"),
                                         ("u3", "+79161234569"), ("u4", "+79031112233")])
        load_file(setup, path)
        report = await job(setup, Sleeps(setup)).run()

        assert report.complete
        assert report.operators[ALPHA].sent == 3
        assert states(setup) == {"u1": ("identified", None), "u2": ("identified", None),
                                 "u3": ("refused", "NOT_FOUND"), "u4": ("refused", "NO_OPERATOR")}
        assert setup.to_gateway.paths("POST") == ["/oauth2/token", BATCH]
        with setup.messenger_engine.connect() as conn:
            code = conn.scalar(select(accounts.c.identification_code)
                               .where(accounts.c.account_id == "u1"))
            audit = conn.execute(select(account_audit.c.to_state, account_audit.c.detail)
                                 .where(account_audit.c.account_id == "u1")).all()
        with setup.gateway_engine.connect() as conn:
            recorded = conn.scalar(select(usages.c.phone_number)
                                   .where(usages.c.identification_code == code))
        assert recorded == "+79161234567"
        assert [a.to_state for a in audit] == ["identified"]
        assert audit[0].detail["event"] == "bulk_identification"
        assert ("Alpha", ALPHA, "identified", 2) in summary(setup.messenger_engine)
        out = io.StringIO()
        assert write_unidentified(setup.messenger_engine, out) == 2
        assert out.getvalue().splitlines()[1:] == [
            f"u3,+79161234569,{ALPHA},refused,NOT_FOUND", "u4,+79031112233,,refused,NO_OPERATOR"]


async def test_a_second_run_never_asks_again_for_an_answered_account(database_url: str,
                                                                    tmp_path: Path) -> None:
    """Loading the same file again adds nothing and a new run sends nothing."""
    async with exchange(database_url, tmp_path) as setup:
        path = write_accounts(tmp_path, [("u1", "+79161234567"), ("u2", "+79161234568")])
        load_file(setup, path)
        await job(setup, Sleeps(setup)).run()
        load_file(setup, path)
        again = await job(setup, Sleeps(setup)).run()

        assert again.operators == {}
        assert setup.to_gateway.paths("POST").count(BATCH) == 1
        with setup.gateway_engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(identification_requests)) == 2


async def test_a_bad_file_is_refused_whole_naming_line_and_field(database_url: str,
                                                                tmp_path: Path) -> None:
    """Every bad row is named and nothing at all is stored."""
    async with exchange(database_url, tmp_path) as setup:
        path = tmp_path / "bad.csv"
        path.write_text("account_id,phone_number,possession_proven_at\n"
                        "u1,+79161234567,2026-11-30T12:00:00Z\n"
                        "bad id!,+79161234568,2026-11-30T12:00:00Z\n"
                        "u3,+1 202 555,2026-11-30T12:00:00Z\n"
                        "u4,+79161234569,2026-11-30 12:00\n"
                        "u5,+79161234569,2099-01-01T00:00:00Z\n"
                        "u1,+79161234568,2026-11-30T12:00:00Z\n", encoding="utf-8")
        with pytest.raises(InvalidFile) as refused:
            load_file(setup, path)

        assert [(p.line, p.field) for p in refused.value.problems] == [
            (3, "account_id"), (4, "phone_number"), (5, "possession_proven_at"),
            (6, "possession_proven_at"), (7, "account_id")]
        assert "already given on line 2" in str(refused.value.problems[-1])
        with setup.messenger_engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(bulk_identifications)) == 0


async def test_a_busy_gateway_is_waited_for_as_its_retry_after_says(database_url: str,
                                                                   tmp_path: Path) -> None:
    """A 429 on a batch is honoured: the job waits ``Retry-After`` and sends it again."""
    async with exchange(database_url, tmp_path) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))
        inner = setup.to_gateway.inner
        refusals = [1]

        class Busy(httpx2.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                if request.url.path == BATCH and refusals:
                    refusals.pop()
                    return httpx2.Response(429, headers={"Retry-After": "7"}, json={
                        "status": 429, "code": "TOO_MANY_REQUESTS", "message": "busy"})
                return await inner.handle_async_request(request)

        setup.to_gateway.inner = Busy()
        sleeps = Sleeps(setup)
        report = await job(setup, sleeps).run()

        assert report.complete
        assert sleeps.waits == [7.0]
        assert states(setup) == {"u1": ("identified", None)}


async def test_an_unreachable_gateway_is_left_for_the_next_run(database_url: str,
                                                              tmp_path: Path) -> None:
    """After ``give_up_seconds`` without an answer the accounts stay queued; a later run
    identifies them."""
    async with exchange(database_url, tmp_path) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))
        inner = setup.to_gateway.inner
        setup.to_gateway.inner = httpx2.MockTransport(lambda _: httpx2.Response(503))
        first: RunReport = await job(setup, Sleeps(setup), give_up_seconds=60).run()

        assert not first.complete
        assert "HTTP_503" in (first.operators[ALPHA].stopped or "")
        assert states(setup) == {}
        setup.to_gateway.inner = inner
        second = await job(setup, Sleeps(setup)).run()
        assert second.complete
        assert states(setup) == {"u1": ("identified", None)}


async def test_deferred_answers_are_polled_until_answered(database_url: str,
                                                         tmp_path: Path) -> None:
    """A pending batch item is looked at again until the gateway has answered it."""
    async with exchange(database_url, tmp_path, deferred=True) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))
        sleeps = Sleeps(setup)

        async def answer_after_first_poll(request: httpx2.Request) -> None:
            if request.method == "GET" and len(setup.to_gateway.paths("GET")) == 2:
                request_id = request.url.path.rsplit("/", 1)[1]
                gateway_requests.answer_pending(setup.gateway_engine, [request_id],
                                                setup.clock.now())

        setup.to_gateway.before = answer_after_first_poll
        report = await job(setup, sleeps).run()

        assert report.complete
        assert sleeps.waits == [5.0]
        assert states(setup) == {"u1": ("identified", None)}


async def test_a_pending_request_past_its_deadline_ends_unanswered(database_url: str,
                                                                  tmp_path: Path) -> None:
    """No answer by ``answerDue`` leaves the account unanswered (SPEC rule 5)."""
    async with exchange(database_url, tmp_path, deferred=True) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))
        report = await BulkIdentification(
            setup.messenger_engine, setup.service.operators, setup.service.store,
            setup.service.outbox, setup.clock, block_on_sim_swap=False,
            sleep=Sleeps(setup), poll_seconds=600).run()

        assert report.complete
        assert states(setup) == {"u1": ("unanswered", "DEADLINE_PASSED")}


async def test_a_notice_received_before_the_answer_wins(database_url: str,
                                                       tmp_path: Path) -> None:
    """Confirmed, then the contract ends and its notice arrives before the job collects the
    answer: the account starts in reidentification_required, never identified (rule 7)."""
    async with exchange(database_url, tmp_path, deferred=True) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))

        async def answer_then_terminate(request: httpx2.Request) -> None:
            if request.method == "GET" and not setup.to_gateway.paths("GET")[:-1]:
                request_id = request.url.path.rsplit("/", 1)[1]
                gateway_requests.answer_pending(setup.gateway_engine, [request_id],
                                                setup.clock.now())
                record_event(setup.gateway_engine, NoticeType.CONTRACT_TERMINATED,
                             "+79161234567", occurred_at=setup.clock.now(),
                             recorded_at=setup.clock.now(), source="test",
                             notice_source="http://alpha.test",
                             handlers=lifecycle_handlers())
                assert await setup.deliver_notices() == 1

        setup.to_gateway.before = answer_then_terminate
        report = await job(setup, Sleeps(setup)).run()

        assert report.complete
        assert states(setup) == {"u1": ("reidentification_required", "CONTRACT_TERMINATED")}
        assert AccountState("reidentification_required").can_send is False


async def test_refused_credentials_stop_an_operator_at_once(database_url: str,
                                                            tmp_path: Path) -> None:
    """invalid_client is no outage: the run leaves the operator at once, saying why, and its
    accounts stay queued for a run after the key is registered."""
    async with exchange(database_url, tmp_path) as setup:
        load_file(setup, write_accounts(tmp_path, [("u1", "+79161234567")]))
        setup.to_gateway.inner = httpx2.MockTransport(lambda _: httpx2.Response(
            401, json={"error": "invalid_client", "error_description": "unknown key"}))
        sleeps = Sleeps(setup)
        report = await job(setup, sleeps).run()

        assert sleeps.waits == []
        assert "TOKEN_invalid_client" in (report.operators[ALPHA].stopped or "")
        with setup.messenger_engine.connect() as conn:
            assert conn.scalar(select(bulk_identifications.c.status)) == "queued"


async def test_adopting_leaves_an_account_the_service_holds_as_it_is(database_url: str,
                                                                     tmp_path: Path) -> None:
    """Of the accounts adopted, one the service already holds is neither created again nor
    audited; the others are, and only they are returned."""
    from numident.messenger.accounts import Adopted

    async with exchange(database_url, tmp_path) as setup:
        store, now = setup.service.store, setup.clock.now()

        def adopted(account_id: str) -> Adopted:
            return Adopted(account_id, "+79161234567", f"code-{account_id}",
                           AccountState.IDENTIFIED, None, ALPHA, "Alpha",
                           {"event": "bulk_identification"})

        with setup.messenger_engine.begin() as conn:
            store.create(conn, "u1", now)
        with setup.messenger_engine.begin() as conn:
            created = store.adopt(conn, [adopted("u1"), adopted("u2")], now)
        with setup.messenger_engine.begin() as conn:
            again = store.adopt(conn, [adopted("u3")], now)

        assert created == {"u2"}
        assert again == {"u3"}
        assert states(setup) == {"u1": ("unidentified", None), "u2": ("identified", None),
                                 "u3": ("identified", None)}
        with setup.messenger_engine.connect() as conn:
            audited = conn.execute(select(account_audit.c.account_id, account_audit.c.to_state)
                                   .order_by(account_audit.c.id)).all()
        assert [tuple(a) for a in audited] == [("u1", "unidentified"), ("u2", "identified"),
                                               ("u3", "identified")]


async def test_a_streamed_run_sends_before_the_whole_file_is_stored(database_url: str,
                                                                   tmp_path: Path) -> None:
    """Given the file's stream, the first batch goes out while later chunks are not stored
    yet; in the end every account is answered once and the bars add up to the file."""
    async with exchange(database_url, tmp_path) as setup:
        numbers = ["+79161234567", "+79161234568", "+79161234569", "+79031112233"]
        more = [(f"v{i:02d}", f"+791612300{i:02d}") for i in range(40)]
        path = write_accounts(tmp_path, [(f"u{i}", n) for i, n in enumerate(numbers)] + more)
        stored_at_first_batch: list[int] = []

        async def count_stored(request: httpx2.Request) -> None:
            if request.url.path == BATCH and not stored_at_first_batch:
                with setup.messenger_engine.connect() as conn:
                    stored_at_first_batch.append(int(conn.scalar(
                        select(func.count()).select_from(bulk_identifications)) or 0))

        setup.to_gateway.before = count_stored
        bars = Bars()
        with streamed(setup, path, chunk=1) as stream:
            report = await job(setup, Sleeps(setup), batch_size=1).run(bars, stream)

        assert report.complete
        assert 0 < stored_at_first_batch[0] < 44
        assert (stream.report.rows, stream.report.refused) == (44, 1)
        assert report.operators[ALPHA].sent == 43
        assert setup.to_gateway.paths("POST").count(BATCH) == 43
        final = states(setup)
        assert {a: final[a] for a in ("u0", "u1", "u2", "u3")} == {
            "u0": ("identified", None), "u1": ("identified", None),
            "u2": ("refused", "NOT_FOUND"), "u3": ("refused", "NO_OPERATOR")}
        assert {final[a] for a, _ in more} == {("refused", "NOT_FOUND")}
        assert sum(n for kind, inn, n, _ in bars.told if kind == "add" and inn == ALPHA) == 43
        assert sum(n for kind, inn, n, _ in bars.told if kind == "advance") == 43


async def test_a_streamed_run_resumes_the_accounts_an_earlier_run_left_queued(
        database_url: str, tmp_path: Path) -> None:
    """Accounts stored but never answered are sent from the same file again, with the codes
    stored for them; answered ones are not asked again."""
    async with exchange(database_url, tmp_path) as setup:
        path = write_accounts(tmp_path, [("u1", "+79161234567"), ("u2", "+79161234568")])
        load_file(setup, path)
        with setup.messenger_engine.connect() as conn:
            codes = dict(conn.execute(select(bulk_identifications.c.account_id,
                                             bulk_identifications.c.identification_code)).all())
        bars = Bars()
        with streamed(setup, path, chunk=1) as stream:
            report = await job(setup, Sleeps(setup)).run(bars, stream)
        with streamed(setup, path, chunk=1) as again:
            second = await job(setup, Sleeps(setup)).run(None, again)

        assert report.operators[ALPHA].sent == 2
        assert second.operators == {}
        assert (stream.report.added, stream.report.already_loaded) == (0, 2)
        assert bars.told[0] == ("add", ALPHA, 2, 0)  # from the table, not twice from the file
        assert sum(n for kind, _, n, _ in bars.told if kind == "add") == 2
        with setup.messenger_engine.connect() as conn:
            adopted = dict(conn.execute(select(accounts.c.account_id,
                                               accounts.c.identification_code)).all())
        assert adopted == codes
        with setup.gateway_engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(identification_requests)) == 2
