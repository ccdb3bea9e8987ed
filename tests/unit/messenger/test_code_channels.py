"""Codes by SMS, flash call and voice call behind one possession check, and provider failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from messenger_fakes import LOOKUP, ScriptedGateway, make_settings
from sqlalchemy import Engine, select

from numident.client.keys import PrivateKey, generate_key
from numident.core.accounts import AccountState
from numident.core.clock import FakeClock
from numident.errors import Conflict, InvalidInput, UpstreamUnavailable
from numident.messenger.bootstrap import Transports, bootstrap
from numident.messenger.channels import Channel, CodeMessage, MemoryCallProvider, Receipt
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender, code_in
from numident.messenger.tables import code_sends, possession_audit, possession_challenges

pytestmark = pytest.mark.anyio
NUMBER = "+79161234567"


@dataclass
class LateSms:
    """An SMS provider that delivers the text and then times out: the worst failure."""

    delivered: list[str] = field(default_factory=list)

    async def send(self, message: CodeMessage) -> Receipt:
        self.delivered.append(message.text)
        raise UpstreamUnavailable("sms provider: unreachable (ReadTimeout)",
                                  code="SMS_UNAVAILABLE")


@dataclass
class WitnessSms:
    """An SMS provider that reads the account's challenge as stored while it sends."""

    engine: Engine
    seen: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    """(status, stored code hash, the code sent) at each send."""

    async def send(self, message: CodeMessage) -> Receipt:
        with self.engine.connect() as conn:
            row = conn.execute(select(possession_challenges.c.status,
                                      possession_challenges.c.code_hash)).one()
        self.seen.append((row.status, row.code_hash, message.code))
        return Receipt()


@pytest.fixture
def flash() -> MemoryCallProvider:
    return MemoryCallProvider(Channel.FLASH_CALL)


@pytest.fixture
def voice() -> MemoryCallProvider:
    return MemoryCallProvider(Channel.VOICE_CALL)


@pytest.fixture
async def channels(tmp_path: Path, operator_keys: dict[str, PrivateKey], engine: Engine,
                   clock: FakeClock, gateway: ScriptedGateway, sms: MemorySmsSender,
                   flash: MemoryCallProvider, voice: MemoryCallProvider
                   ) -> AsyncIterator[MessengerService]:
    """A service whose fallback order is flash call, SMS, voice call."""
    settings = make_settings(tmp_path, operator_keys, channels={
        "order": ["flash_call", "sms", "voice_call"], "initial_backoff_seconds": 2,
        "max_backoff_seconds": 3})
    service = bootstrap(settings, engine=engine, clock=clock, sms_sender=sms,
                        transports=Transports(operator=gateway.transport), lookup=LOOKUP,
                        key=generate_key(),
                        providers={Channel.FLASH_CALL: flash,
                                   Channel.VOICE_CALL: voice}).service
    yield service
    await service.aclose()


def audit_trail(service: MessengerService) -> list[tuple[str, str | None, str | None]]:
    with service.engine.connect() as conn:
        return [(r.event, r.channel, r.reason) for r in conn.execute(
            select(possession_audit).order_by(possession_audit.c.id))]


async def test_flash_call_code_is_the_last_digits_of_the_calling_number(
        channels: MessengerService, flash: MemoryCallProvider, sms: MemorySmsSender) -> None:
    """The default channel calls; the caller's last four digits prove possession, stored
    only as their keyed hash."""
    account = await channels.set_phone_number("user-1", NUMBER)
    assert account.state is AccountState.VERIFYING_POSSESSION
    [(to, caller)] = flash.calls
    code = caller[-4:]
    assert (to, sms.sent) == (NUMBER, [])
    with channels.engine.connect() as conn:
        row = conn.execute(select(possession_challenges)).one()
    assert (row.channel, row.code_hash) == (
        "flash_call", channels.possession.digest("user-1", NUMBER, code))
    confirmed = await channels.confirm_possession("user-1", code)
    assert confirmed.state is AccountState.PENDING
    with channels.engine.connect() as conn:
        send = conn.execute(select(code_sends)).one()
    assert (send.channel, send.status, send.confirmed_at is not None) == (
        "flash_call", "sent", True)


async def test_flash_call_codes_have_limited_attempts_like_sms_codes(
        channels: MessengerService, flash: MemoryCallProvider) -> None:
    """Five wrong guesses burn the flash call's code; the right one no longer helps."""
    await channels.set_phone_number("user-1", NUMBER)
    right = flash.calls[-1][1][-4:]
    wrong = "0000" if right != "0000" else "1111"
    for _ in range(4):
        with pytest.raises(InvalidInput):
            await channels.confirm_possession("user-1", wrong)
    with pytest.raises(Conflict, match="too many wrong codes"):
        await channels.confirm_possession("user-1", wrong)
    with pytest.raises(Conflict, match="too many wrong codes"):
        await channels.confirm_possession("user-1", right)


async def test_voice_call_speaks_the_code_digit_by_digit(
        channels: MessengerService, voice: MemoryCallProvider) -> None:
    """channel=voice_call: the call's text spells the six digits, which then confirm."""
    await channels.set_phone_number("user-1", NUMBER, channel="voice_call")
    [(to, text)] = voice.calls
    digits = "".join(ch for ch in text.split("Again")[0] if ch.isdigit())
    assert to == NUMBER
    assert len(digits) == 6
    account = await channels.confirm_possession("user-1", digits)
    assert account.state is AccountState.PENDING


async def test_a_new_request_on_the_same_number_moves_to_the_next_channel(
        channels: MessengerService, flash: MemoryCallProvider, sms: MemorySmsSender,
        clock: FakeClock) -> None:
    """Flash call first; asked again after the resend interval, the code comes by SMS, and
    the flash call's code stops counting."""
    await channels.set_phone_number("user-1", NUMBER)
    flash_code = flash.calls[-1][1][-4:]
    clock.advance(61)
    await channels.set_phone_number("user-1", NUMBER)
    sms_code = sms.last_code(NUMBER)
    with pytest.raises(InvalidInput, match="wrong"):
        await channels.confirm_possession("user-1", flash_code)
    assert (await channels.confirm_possession("user-1", sms_code)).state is AccountState.PENDING


async def test_a_failing_provider_falls_back_to_the_next_channel_after_a_backoff(
        channels: MessengerService, flash: MemoryCallProvider, sms: MemorySmsSender,
        clock: FakeClock) -> None:
    """The flash call provider fails: the SMS goes out 2 s later (the backoff, on the
    clock), and the audit trail records both."""
    flash.failures = 1
    before = clock.now()
    await channels.set_phone_number("user-1", NUMBER)
    assert (clock.now() - before).total_seconds() == 2
    assert [to for to, _ in sms.sent] == [NUMBER]
    assert audit_trail(channels) == [("failed", "flash_call", "FLASH_CALL_UNAVAILABLE"),
                                     ("sent", "sms", None)]
    assert (await channels.confirm_possession("user-1", sms.last_code(NUMBER))
            ).state is AccountState.PENDING


async def test_a_provider_that_times_out_after_delivering_leaves_no_second_valid_code(
        tmp_path: Path, operator_keys: dict[str, PrivateKey], engine: Engine,
        clock: FakeClock, voice: MemoryCallProvider) -> None:
    """The SMS arrives but its provider timed out; the voice call's code is the only one
    that counts: the late SMS's code is wrong."""
    settings = make_settings(tmp_path, operator_keys, channels={
        "order": ["sms", "voice_call"], "initial_backoff_seconds": 0})
    late = LateSms()
    service = bootstrap(settings, engine=engine, clock=clock, lookup=LOOKUP,
                        key=generate_key(),
                        providers={Channel.SMS: late, Channel.VOICE_CALL: voice}).service
    try:
        await service.set_phone_number("user-1", NUMBER)
        late_code = code_in(late.delivered[0])
        spoken = "".join(ch for ch in voice.calls[0][1].split("Again")[0] if ch.isdigit())
        if late_code != spoken:
            with pytest.raises(InvalidInput, match="wrong"):
                await service.confirm_possession("user-1", late_code)
        assert (await service.confirm_possession("user-1", spoken)).state is \
            AccountState.PENDING
    finally:
        await service.aclose()


async def test_when_every_channel_fails_the_request_fails_and_may_be_repeated_at_once(
        channels: MessengerService, flash: MemoryCallProvider, sms: MemorySmsSender,
        voice: MemoryCallProvider, clock: FakeClock) -> None:
    """Three channels, each failing: 503 CODE_NOT_DELIVERED after backoffs of 2 and 3 s;
    no code is valid and the resend throttle is lifted."""
    flash.failures, sms.fail, voice.failures = 1, True, 1
    before = clock.now()
    with pytest.raises(UpstreamUnavailable) as failed:
        await channels.set_phone_number("user-1", NUMBER)
    assert failed.value.code == "CODE_NOT_DELIVERED"
    assert (clock.now() - before).total_seconds() == 2 + 3
    with pytest.raises(Conflict):
        await channels.confirm_possession("user-1", "1234")
    sms.fail = False
    await channels.set_phone_number("user-1", NUMBER)
    assert len(flash.calls) == 1


async def test_a_channel_the_service_does_not_offer_is_refused(
        service: MessengerService, sms: MemorySmsSender) -> None:
    """The default order is SMS only: flash_call is not offered, 'fax' is no channel."""
    with pytest.raises(InvalidInput) as refused:
        await service.set_phone_number("user-1", NUMBER, channel="flash_call")
    assert refused.value.code == "CHANNEL_NOT_OFFERED"
    with pytest.raises(InvalidInput) as unknown:
        await service.set_phone_number("user-1", NUMBER, channel="fax")
    assert unknown.value.code == "INVALID_CHANNEL"
    assert sms.sent == []


async def test_the_first_code_counts_before_its_provider_is_called(
        tmp_path: Path, operator_keys: dict[str, PrivateKey], engine: Engine,
        clock: FakeClock) -> None:
    """The first try's code is armed with the admission, so it is valid (stored as its HMAC,
    challenge open) before the SMS that carries it can arrive; and it is the code confirmed."""
    settings = make_settings(tmp_path, operator_keys, channels={"order": ["sms"]})
    witness = WitnessSms(engine)
    service = bootstrap(settings, engine=engine, clock=clock, lookup=LOOKUP,
                        key=generate_key(), providers={Channel.SMS: witness}).service
    try:
        await service.set_phone_number("user-1", NUMBER)
        [(status, stored, code)] = witness.seen
        assert code is not None
        assert (status, stored) == ("open", service.possession.digest("user-1", NUMBER, code))
        assert (await service.confirm_possession("user-1", code)).state is AccountState.PENDING
    finally:
        await service.aclose()
