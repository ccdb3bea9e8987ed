"""Intake of operator notices: only signed ones, once each, for the sender's own usages."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from messenger_fakes import (
    ALPHA,
    BETA,
    LOOKUP,
    Reply,
    ScriptedGateway,
    answered,
    make_settings,
    pending,
)
from sqlalchemy import Engine, func, select

from numident.client.keys import PrivateKey, generate_key
from numident.client.signatures import NoticeSigner
from numident.core.accounts import AccountState
from numident.core.clock import FakeClock
from numident.core.notices import NoticeType
from numident.errors import InvalidInput, Unauthenticated
from numident.messenger.bootstrap import Transports, bootstrap
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender
from numident.messenger.tables import account_audit, received_notices

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"
URL = "http://messenger.test/messenger/v1/notices"


def signed(key: PrivateKey, clock: FakeClock, kind: NoticeType, code: str,
           event_id: str = "evt-1") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"specversion": "1.0", "id": event_id, "source": "http://op.test",
                       "type": kind.cloudevent_type, "time": "2026-01-01T11:00:00Z",
                       "data": {"phoneNumber": NUMBER, "identificationCode": code,
                                "occurredAt": "2026-01-01T11:00:00Z",
                                "reason": kind.value}}).encode()
    headers = {"Content-Type": "application/cloudevents+json"}
    headers.update(NoticeSigner(key, now=clock.now).sign("POST", URL, body, dict(headers)))
    return headers, body


async def identified(service: MessengerService, sms: MemorySmsSender,
                     gateway: ScriptedGateway) -> str:
    gateway.default = answered("confirmed")
    await service.set_phone_number("user-1", NUMBER)
    await service.confirm_possession("user-1", sms.last_code(NUMBER))
    account = await service.follow("user-1")
    assert account.state is AccountState.IDENTIFIED
    return account.identification_code


async def test_terminated_contract_blocks_messaging_until_reidentified(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """contract_terminated from the serving operator -> reidentification_required."""
    code = await identified(service, sms, gateway)
    receipt = service.receive_notice("POST", URL, *signed(
        operator_keys[ALPHA], clock, NoticeType.CONTRACT_TERMINATED, code))
    assert (receipt.duplicate, receipt.accounts, receipt.operator_inn) == (False, 1, ALPHA)
    account = service.status("user-1")
    assert (account.state, account.reason) == (AccountState.REIDENTIFICATION_REQUIRED,
                                               "CONTRACT_TERMINATED")
    assert service.can_send("user-1") is False


async def test_replayed_notice_has_no_second_effect(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """The same CloudEvent id again is answered as a duplicate and changes nothing."""
    code = await identified(service, sms, gateway)
    headers, body = signed(operator_keys[ALPHA], clock, NoticeType.NUMBER_PORTED_OUT, code)
    service.receive_notice("POST", URL, headers, body)
    with service.engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(account_audit)).scalar()
    again = service.receive_notice("POST", URL, headers, body)
    assert (again.duplicate, again.accounts) == (True, 0)
    with service.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(account_audit)).scalar() == audited


async def test_unsigned_and_forged_notices_are_refused(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """No signature, an unknown key or a changed body -> Unauthenticated with a stable code."""
    code = await identified(service, sms, gateway)
    headers, body = signed(operator_keys[ALPHA], clock, NoticeType.CONTRACT_TERMINATED, code)
    codes = []
    for attempt_headers, attempt_body in [
        ({"Content-Type": "application/cloudevents+json"}, body),
        signed(generate_key(), clock, NoticeType.CONTRACT_TERMINATED, code),
        (headers, body.replace(b"evt-1", b"evt-2")),
    ]:
        with pytest.raises(Unauthenticated) as refused:
            service.receive_notice("POST", URL, attempt_headers, attempt_body)
        codes.append(refused.value.code)
    assert codes == ["SIGNATURE_MISSING", "UNKNOWN_KEY", "DIGEST_MISMATCH"]
    assert service.status("user-1").state is AccountState.IDENTIFIED


async def test_notice_from_another_operator_does_not_touch_the_account(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """Only the operator holding the usage may invalidate it."""
    code = await identified(service, sms, gateway)
    receipt = service.receive_notice("POST", URL, *signed(
        operator_keys[BETA], clock, NoticeType.CONTRACT_TERMINATED, code))
    assert receipt.accounts == 0
    assert service.status("user-1").state is AccountState.IDENTIFIED


async def test_notice_for_an_unknown_code_is_recorded_and_ignored(
        service: MessengerService, clock: FakeClock,
        operator_keys: dict[str, PrivateKey]) -> None:
    """An unknown code changes no account but the notice is kept (and deduplicated)."""
    receipt = service.receive_notice("POST", URL, *signed(
        operator_keys[ALPHA], clock, NoticeType.HOLDER_CHANGED, "nobody-here"))
    assert (receipt.duplicate, receipt.accounts) == (False, 0)
    with service.engine.connect() as conn:
        row = conn.execute(select(received_notices)).one()
    assert (row.operator_inn, row.event_id, row.type) == (ALPHA, "evt-1", "holder_changed")


async def test_sim_swap_is_recorded_but_does_not_block_by_default(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """sim_swapped sets simSwappedAt; the account stays identified."""
    code = await identified(service, sms, gateway)
    service.receive_notice("POST", URL, *signed(
        operator_keys[ALPHA], clock, NoticeType.SIM_SWAPPED, code))
    account = service.status("user-1")
    assert account.state is AccountState.IDENTIFIED
    assert account.sim_swapped_at is not None
    assert account.sim_swapped_at.isoformat() == "2026-01-01T11:00:00+00:00"


async def test_sim_swap_blocks_when_configured(
        tmp_path: Path, engine: Engine, clock: FakeClock, gateway: ScriptedGateway,
        sms: MemorySmsSender, operator_keys: dict[str, PrivateKey]) -> None:
    """With block_on_sim_swap the account must be identified again."""
    settings = make_settings(tmp_path, operator_keys, block_on_sim_swap=True)
    service = bootstrap(settings, engine=engine, clock=clock, sms_sender=sms,
                        transports=Transports(operator=gateway.transport), lookup=LOOKUP,
                        key=generate_key()).service
    try:
        code = await identified(service, sms, gateway)
        service.receive_notice("POST", URL, *signed(
            operator_keys[ALPHA], clock, NoticeType.SIM_SWAPPED, code))
        assert service.status("user-1").state is AccountState.REIDENTIFICATION_REQUIRED
    finally:
        await service.aclose()


async def test_signed_garbage_is_bad_input(service: MessengerService, clock: FakeClock,
                                           operator_keys: dict[str, PrivateKey]) -> None:
    """A correctly signed body that is no numident CloudEvent -> INVALID_NOTICE."""
    body = b'{"specversion": "1.0", "id": "x", "type": "com.example.other", "data": {}}'
    headers = {"Content-Type": "application/cloudevents+json"}
    headers.update(NoticeSigner(operator_keys[ALPHA], now=clock.now).sign(
        "POST", URL, body, dict(headers)))
    with pytest.raises(InvalidInput) as refused:
        service.receive_notice("POST", URL, headers, body)
    assert refused.value.code == "INVALID_NOTICE"


def notice_first(service: MessengerService, key: PrivateKey, clock: FakeClock,
                 kind: NoticeType, reply: Reply) -> Reply:
    """``reply``, with the notice received while the call is in flight (before its answer)."""
    def scripted(request: httpx2.Request, gateway: ScriptedGateway) -> httpx2.Response:
        code = service.status("user-1").identification_code
        service.receive_notice("POST", URL, *signed(key, clock, kind, code))
        return reply(request, gateway)
    return scripted


async def test_notice_while_pending_voids_the_confirmed_answer_in_flight(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """confirmed, collected after a contract_terminated notice, is asked again, not trusted."""
    gateway.script = [pending(), notice_first(service, operator_keys[ALPHA], clock,
                                              NoticeType.CONTRACT_TERMINATED,
                                              answered("confirmed")),
                      answered("not_found")]
    await service.set_phone_number("user-1", NUMBER)
    await service.confirm_possession("user-1", sms.last_code(NUMBER))
    account = await service.follow("user-1")
    assert (account.state, account.reason) == (AccountState.REFUSED, "NOT_FOUND")
    assert [m for m, _, _ in gateway.calls] == ["POST", "GET", "POST"]
    with service.engine.connect() as conn:
        assert service.store.history(conn, "user-1")[-4:] == [
            ("verifying_possession", "pending"), ("pending", "reidentification_required"),
            ("reidentification_required", "pending"), ("pending", "refused")]
        row = conn.execute(select(received_notices)).one()
    assert row.accounts_affected == 1


async def test_notice_while_pending_blocks_at_once_and_the_new_answer_decides(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock, operator_keys: dict[str, PrivateKey]) -> None:
    """The account cannot send from the notice on; the answer to the new question counts."""
    states: list[AccountState] = []

    def observe(request: httpx2.Request, gateway: ScriptedGateway) -> httpx2.Response:
        states.append(service.status("user-1").state)
        return answered("confirmed")(request, gateway)

    gateway.script = [notice_first(service, operator_keys[ALPHA], clock,
                                   NoticeType.NUMBER_REASSIGNED, answered("confirmed")),
                      observe]
    await service.set_phone_number("user-1", NUMBER)
    await service.confirm_possession("user-1", sms.last_code(NUMBER))
    account = await service.follow("user-1")
    assert states == [AccountState.PENDING]
    assert account.state is AccountState.IDENTIFIED
    assert [m for m, _, _ in gateway.calls] == ["POST", "POST"]
