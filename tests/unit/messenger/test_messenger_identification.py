"""The identification client against a scripted gateway: answers, polling, retries, deadline."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from messenger_fakes import (
    ScriptedGateway,
    answered,
    expired,
    failing,
    pending,
    unreachable,
)

from numident.core.accounts import AccountState
from numident.core.clock import FakeClock
from numident.errors import PermissionDenied
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"


async def identify(service: MessengerService, sms: MemorySmsSender,
                   account_id: str = "user-1", number: str = NUMBER) -> AccountState:
    await service.set_phone_number(account_id, number)
    await service.confirm_possession(account_id, sms.last_code(number))
    return (await service.follow(account_id)).state


async def test_confirmed_answer_identifies_and_opens_the_gate(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """confirmed -> identified, and only then can the account send."""
    gateway.script = [answered("confirmed")]
    assert await identify(service, sms) is AccountState.IDENTIFIED
    assert service.can_send("user-1") is True
    assert [(m, p) for m, p, _ in gateway.calls] == [("POST", "/identification/v1/requests")]


async def test_not_found_answer_refuses(service: MessengerService, sms: MemorySmsSender,
                                        gateway: ScriptedGateway) -> None:
    """not_found -> refused with reason NOT_FOUND; the account cannot send."""
    gateway.script = [answered("not_found")]
    assert await identify(service, sms) is AccountState.REFUSED
    assert service.status("user-1").reason == "NOT_FOUND"
    assert service.can_send("user-1") is False


async def test_deferred_answer_is_polled_with_doubling_backoff(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """202 -> GET after 1, 2, 4 s... until the answer comes."""
    gateway.script = [pending(), pending(), pending(), answered("confirmed")]
    assert await identify(service, sms) is AccountState.IDENTIFIED
    assert [m for m, _, _ in gateway.calls] == ["POST", "GET", "GET", "GET"]
    assert gateway.calls[1][1] == f"/identification/v1/requests/{gateway.request_id}"
    assert gateway.times() == [0, 1, 3, 7]


async def test_server_errors_and_network_failures_are_retried(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """503 and a refused connection are retried with backoff, then the answer counts."""
    gateway.script = [failing(503), unreachable(), answered("confirmed")]
    assert await identify(service, sms) is AccountState.IDENTIFIED
    assert gateway.times() == [0, 1, 3]


async def test_too_many_requests_honours_retry_after(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """429 with Retry-After: 42 -> the next try comes 42 s later, not earlier."""
    gateway.script = [failing(429, "TOO_MANY_REQUESTS", {"Retry-After": "42"}),
                      answered("confirmed")]
    assert await identify(service, sms) is AccountState.IDENTIFIED
    assert gateway.times() == [0, 42]


async def test_rejected_token_is_refreshed_once(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """A 401 drops the cached token; the call is repeated with a fresh one at once."""
    gateway.script = [failing(401, "TOKEN_EXPIRED"), answered("confirmed")]
    assert await identify(service, sms) is AccountState.IDENTIFIED
    assert gateway.tokens_issued == 2
    assert gateway.times() == [0, 0]


async def test_access_token_is_cached_between_requests(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """Two identifications at one operator need one token."""
    gateway.default = answered("confirmed")
    await identify(service, sms, "user-1", "+79161234567")
    await identify(service, sms, "user-2", "+79161234568")
    assert gateway.tokens_issued == 1


async def test_no_answer_by_the_deadline_leaves_the_account_unanswered(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway,
        clock: FakeClock) -> None:
    """A gateway that stays pending is given up exactly at answerDue (receipt + 20 min)."""
    gateway.default = pending()
    started = clock.now()
    assert await identify(service, sms) is AccountState.UNANSWERED
    assert service.status("user-1").reason == "DEADLINE_PASSED"
    assert gateway.calls[-1][2] == started + timedelta(minutes=20)
    times = gateway.times()
    assert max(b - a for a, b in itertools.pairwise(times)) == 30


async def test_a_request_the_gateway_expired_leaves_the_account_unanswered(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """An expired request is the gateway's own "no answer in time": unanswered, no more polls."""
    gateway.script = [pending(), expired()]
    assert await identify(service, sms) is AccountState.UNANSWERED
    assert service.status("user-1").reason == "NOT_ANSWERED_IN_TIME"
    assert [m for m, _, _ in gateway.calls] == ["POST", "GET"]


async def test_unreachable_gateway_ends_unanswered_with_the_last_error(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """Without any answer for 20 minutes the account is unanswered; the reason says why."""
    gateway.default = unreachable()
    assert await identify(service, sms) is AccountState.UNANSWERED
    assert service.status("user-1").reason == "NETWORK: ConnectError"


async def test_request_the_gateway_rejects_ends_unanswered_at_once(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """A 400 is not retried: the reason is the gateway's code."""
    gateway.script = [failing(400, "INVALID_PHONE_NUMBER")]
    assert await identify(service, sms) is AccountState.UNANSWERED
    assert service.status("user-1").reason == "INVALID_PHONE_NUMBER"
    assert len(gateway.calls) == 1


async def test_number_without_operator_is_refused_with_a_reason(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """Nobody to ask: refused at once, NO_OPERATOR or OPERATOR_NOT_CONFIGURED (no code is
    ever sent to a number the plan lists nowhere, so NO_OPERATOR needs asserted possession)."""
    account = await service.identify_now("user-1", "+79501234567", possession_proven=True)
    assert account.state is AccountState.REFUSED
    assert service.status("user-1").reason == "NO_OPERATOR"
    assert await identify(service, sms, "user-2", "+79991234567") is AccountState.REFUSED
    assert service.status("user-2").reason == "OPERATOR_NOT_CONFIGURED"


async def test_restart_resumes_an_open_identification(
        service: MessengerService, sms: MemorySmsSender, gateway: ScriptedGateway) -> None:
    """An attempt opened before a restart is followed by the next run to its answer."""
    gateway.script = [pending(), answered("confirmed")]
    await service.set_phone_number("user-1", NUMBER)
    await service.confirm_possession("user-1", sms.last_code(NUMBER))
    await service.run_identifications()
    assert service.status("user-1").state is AccountState.IDENTIFIED
    assert [m for m, _, _ in gateway.calls] == ["POST", "GET"]


async def test_identify_now_requires_possession_to_be_asserted(
        service: MessengerService, gateway: ScriptedGateway) -> None:
    """Skipping the SMS is refused unless the caller says possession was proven."""
    with pytest.raises(PermissionDenied):
        await service.identify_now("user-1", NUMBER, possession_proven=False)
    gateway.script = [answered("confirmed")]
    account = await service.identify_now("user-1", NUMBER, possession_proven=True)
    assert account.state is AccountState.IDENTIFIED
