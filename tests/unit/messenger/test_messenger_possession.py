"""Proof of possession: the SMS code's life (SPEC rule 0)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from numident.core.accounts import AccountState
from numident.core.clock import FakeClock
from numident.errors import Conflict, InvalidInput, TooManyRequests, UpstreamUnavailable
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender
from numident.messenger.tables import identification_attempts, possession_challenges

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"


async def test_setting_a_number_sends_a_code_and_waits_for_possession(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """The account moves to verifying_possession and the user gets a six-digit code."""
    account = await service.set_phone_number("user-1", NUMBER)
    assert account.state is AccountState.VERIFYING_POSSESSION
    assert account.phone_number == NUMBER
    assert len(sms.last_code(NUMBER)) == 6
    assert service.can_send("user-1") is False


async def test_code_is_stored_only_as_a_keyed_hash(service: MessengerService,
                                                   sms: MemorySmsSender) -> None:
    """The database holds HMAC(secret, account|number|code), never the code itself."""
    await service.set_phone_number("user-1", NUMBER)
    code = sms.last_code(NUMBER)
    with service.engine.connect() as conn:
        row = conn.execute(select(possession_challenges)).one()
    assert code not in str(tuple(row))
    assert row.code_hash == service.possession.digest("user-1", NUMBER, code)
    assert row.code_hash != service.possession.digest("user-2", NUMBER, code)


async def test_right_code_makes_the_account_pending_and_opens_an_identification(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """After the right code the operator is asked: state pending, one open attempt."""
    await service.set_phone_number("user-1", NUMBER)
    account = await service.confirm_possession("user-1", sms.last_code(NUMBER))
    assert account.state is AccountState.PENDING
    assert account.operator_inn == "7700000001"
    with service.engine.connect() as conn:
        attempt = conn.execute(select(identification_attempts)).one()
    assert (attempt.id, attempt.status, attempt.phone_number) == (account.attempt_id, "open",
                                                                  NUMBER)


async def test_expired_code_is_refused(service: MessengerService, sms: MemorySmsSender,
                                       clock: FakeClock) -> None:
    """A code is valid for code_ttl_seconds (300) and not a second longer."""
    await service.set_phone_number("user-1", NUMBER)
    clock.advance(300)
    with pytest.raises(Conflict) as refused:
        await service.confirm_possession("user-1", sms.last_code(NUMBER))
    assert refused.value.code == "CODE_EXPIRED"
    assert service.status("user-1").state is AccountState.VERIFYING_POSSESSION


async def test_wrong_codes_burn_the_challenge_after_max_attempts(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """Four wrong guesses count down; the fifth burns the code, even for the right one after."""
    await service.set_phone_number("user-1", NUMBER)
    right = sms.last_code(NUMBER)
    wrong = "000000" if right != "000000" else "111111"
    messages = []
    for _ in range(4):
        with pytest.raises(InvalidInput) as refused:
            await service.confirm_possession("user-1", wrong)
        messages.append(refused.value.message)
    assert messages[-1] == "the code is wrong; 1 attempt(s) left"
    with pytest.raises(Conflict) as burnt:
        await service.confirm_possession("user-1", wrong)
    assert burnt.value.code == "CODE_ATTEMPTS_EXHAUSTED"
    with pytest.raises(Conflict) as still:
        await service.confirm_possession("user-1", right)
    assert still.value.code == "CODE_ATTEMPTS_EXHAUSTED"


async def test_a_new_code_is_throttled_for_the_resend_interval(
        service: MessengerService, sms: MemorySmsSender, clock: FakeClock) -> None:
    """A second code within 60 s is refused with Retry-After; at 60 s it is sent."""
    await service.set_phone_number("user-1", NUMBER)
    clock.advance(45)
    with pytest.raises(TooManyRequests) as throttled:
        await service.set_phone_number("user-1", NUMBER)
    assert throttled.value.retry_after == 15
    clock.advance(15)
    await service.set_phone_number("user-1", NUMBER)
    assert len(sms.sent) == 2


async def test_only_the_latest_code_counts(service: MessengerService, sms: MemorySmsSender,
                                           clock: FakeClock) -> None:
    """A resent code replaces the earlier one."""
    await service.set_phone_number("user-1", NUMBER)
    first = sms.last_code(NUMBER)
    clock.advance(60)
    await service.set_phone_number("user-1", NUMBER)
    second = sms.last_code(NUMBER)
    if first != second:
        with pytest.raises(InvalidInput):
            await service.confirm_possession("user-1", first)
    account = await service.confirm_possession("user-1", second)
    assert account.state is AccountState.PENDING


async def test_failed_sms_lifts_the_throttle(service: MessengerService,
                                             sms: MemorySmsSender) -> None:
    """When the SMS could not be sent the caller may ask again at once."""
    sms.fail = True
    with pytest.raises(UpstreamUnavailable):
        await service.set_phone_number("user-1", NUMBER)
    sms.fail = False
    await service.set_phone_number("user-1", NUMBER)
    assert [to for to, _ in sms.sent] == [NUMBER]


async def test_confirming_without_a_code_pending_is_a_conflict(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """A used code cannot be used twice."""
    await service.set_phone_number("user-1", NUMBER)
    code = sms.last_code(NUMBER)
    await service.confirm_possession("user-1", code)
    with pytest.raises(Conflict) as refused:
        await service.confirm_possession("user-1", code)
    assert refused.value.code == "NO_CODE_PENDING"


async def test_foreign_numbers_are_refused_unless_their_region_is_allowed(
        service: MessengerService) -> None:
    """Only the configured regions (RU by default) are served."""
    with pytest.raises(InvalidInput) as refused:
        await service.set_phone_number("user-1", "+12025550143")
    assert refused.value.code == "UNSUPPORTED_COUNTRY"
