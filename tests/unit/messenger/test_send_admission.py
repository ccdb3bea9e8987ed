"""Defence against pumping: where codes may go, how many, and the refusals' trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from messenger_fakes import LOOKUP, ScriptedGateway, make_settings
from sqlalchemy import Engine, select

from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import FakeClock
from numident.errors import TooManyRequests, Unprocessable
from numident.messenger.admission import client_key, refusal_counts
from numident.messenger.bootstrap import Transports, bootstrap
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender
from numident.messenger.tables import code_sends, possession_audit

pytestmark = pytest.mark.anyio


@pytest.fixture
def budgets() -> dict[str, Any]:
    return {}


@pytest.fixture
async def guarded(tmp_path: Path, operator_keys: dict[str, PrivateKey], engine: Engine,
                  clock: FakeClock, gateway: ScriptedGateway, sms: MemorySmsSender,
                  budgets: dict[str, Any]) -> AsyncIterator[MessengerService]:
    settings = make_settings(tmp_path, operator_keys, possession={
        "secret": "s" * 32, "resend_interval_seconds": 0, **budgets})
    service = bootstrap(settings, engine=engine, clock=clock, sms_sender=sms,
                        transports=Transports(operator=gateway.transport), lookup=LOOKUP,
                        key=generate_key()).service
    yield service
    await service.aclose()


def refusals_metric(service: MessengerService, reason: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "numident_messenger_code_refusals_total", {"reason": reason})
    return value or 0.0


async def test_a_number_the_plan_lists_in_no_mobile_range_gets_no_code(
        guarded: MessengerService, sms: MemorySmsSender) -> None:
    """+7950... is in no range; +7495 (Moscow fixed) neither: 422 NUMBER_NOT_MOBILE, nothing
    sent, the account untouched, the refusal in the audit trail and the metrics."""
    for number in ("+79501234567", "+74951234567"):
        with pytest.raises(Unprocessable) as refused:
            await guarded.set_phone_number("bot", number, client_address="198.51.100.9")
        assert refused.value.code == "NUMBER_NOT_MOBILE"
    assert sms.sent == []
    with guarded.engine.connect() as conn:
        rows = conn.execute(select(possession_audit)).all()
        assert refusal_counts(conn) == {"not_mobile": 2}
    assert [(r.phone_number, r.client_address) for r in rows] == [
        ("+79501234567", "198.51.100.9"), ("+74951234567", "198.51.100.9")]
    assert refusals_metric(guarded, "not_mobile") == 2
    assert guarded.can_send("bot") is False


@pytest.mark.parametrize("budgets", [{"budgets": {"per_number": {"sends": 3}}}])
async def test_the_per_number_budget_refuses_with_429_and_retry_after(
        guarded: MessengerService, sms: MemorySmsSender, clock: FakeClock) -> None:
    """Three codes an hour to one number, whatever the account: the fourth waits until the
    first is an hour old."""
    for i in range(3):
        await guarded.set_phone_number(f"user-{i}", "+79161234567")
        clock.advance(60)
    with pytest.raises(TooManyRequests) as refused:
        await guarded.set_phone_number("user-9", "+79161234567")
    assert (refused.value.code, refused.value.retry_after) == ("SEND_BUDGET_EXHAUSTED", 3420)
    assert "to this number" in refused.value.message
    assert len(sms.sent) == 3
    clock.advance(3420)
    await guarded.set_phone_number("user-9", "+79161234567")
    assert len(sms.sent) == 4


@pytest.mark.parametrize("budgets", [{"budgets": {"per_address": {"sends": 2},
                                                  "per_number": None}}])
async def test_the_per_address_budget_counts_an_ipv6_network_as_one_address(
        guarded: MessengerService, sms: MemorySmsSender) -> None:
    """Two codes per address: two hosts of one /64 share it; another address is not held."""
    await guarded.set_phone_number("a", "+79161234567", client_address="2001:db8:1:2::10")
    await guarded.set_phone_number("b", "+79161234568", client_address="2001:db8:1:2::11")
    with pytest.raises(TooManyRequests, match="from this address"):
        await guarded.set_phone_number("c", "+79161234569", client_address="2001:db8:1:2::12")
    await guarded.set_phone_number("d", "+79161234570", client_address="203.0.113.5")
    assert len(sms.sent) == 3
    assert client_key("2001:db8:1:2::12") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert client_key("not an address") is None


@pytest.mark.parametrize("budgets", [{"budgets": {"per_range": {"sends": 4},
                                                  "total": {"sends": 6}}}])
async def test_range_and_total_budgets(guarded: MessengerService, sms: MemorySmsSender,
                                       clock: FakeClock) -> None:
    """Four per plan range, six in all: the fifth to +7916 is refused, +7903 takes two more,
    then the total refuses everything."""
    for i in range(4):
        await guarded.set_phone_number(f"a{i}", f"+7916123450{i}")
    with pytest.raises(TooManyRequests, match="to this range"):
        await guarded.set_phone_number("a9", "+79161234599")
    for i in range(2):
        await guarded.set_phone_number(f"b{i}", f"+7903123450{i}")
    with pytest.raises(TooManyRequests, match="by the service"):
        await guarded.set_phone_number("b9", "+79031234599")
    assert len(sms.sent) == 6
    with guarded.engine.connect() as conn:
        assert refusal_counts(conn) == {"per_range": 1, "total": 1}


@pytest.mark.parametrize("budgets", [{"circuit": {"min_sends": 5, "min_success_ratio": 0.4},
                                      "budgets": {"per_number": None}}])
async def test_a_range_whose_codes_are_never_confirmed_is_suspended_and_others_are_not(
        guarded: MessengerService, sms: MemorySmsSender, clock: FakeClock) -> None:
    """Five codes into +7916 and none typed in: the range is suspended (429
    RANGE_SUSPENDED) until the oldest ages out, and +7903 is still served; confirmed codes
    keep a range open."""
    for i in range(5):
        await guarded.set_phone_number(f"bot-{i}", f"+7916123450{i}")
        clock.advance(10)
    with pytest.raises(TooManyRequests) as refused:
        await guarded.set_phone_number("bot-9", "+79161234599")
    assert (refused.value.code, refused.value.retry_after) == ("RANGE_SUSPENDED", 3600 - 50)
    for i in range(5):
        await guarded.set_phone_number(f"user-{i}", f"+7903123450{i}")
        await guarded.confirm_possession(f"user-{i}", sms.last_code(f"+7903123450{i}"))
    await guarded.set_phone_number("user-9", "+79031234599")
    assert refusals_metric(guarded, "circuit_open") == 1


async def test_the_resend_throttle_is_a_refusal_on_the_trail_too(
        service: MessengerService) -> None:
    """The per-account resend interval answers 429 and is audited like the budgets."""
    await service.set_phone_number("user-1", "+79161234567")
    with pytest.raises(TooManyRequests) as refused:
        await service.set_phone_number("user-1", "+79161234567")
    assert (refused.value.code, refused.value.retry_after) == ("TOO_MANY_REQUESTS", 60)
    with service.engine.connect() as conn:
        assert refusal_counts(conn) == {"resend_too_soon": 1}


@pytest.mark.parametrize("budgets", [{"budgets": {"per_number": {"sends": 5,
                                                                 "window_seconds": 600},
                                                  "per_range": None, "per_region": None,
                                                  "per_address": None},
                                      "circuit": {"window_seconds": 900}}])
async def test_sends_older_than_every_window_are_deleted_and_the_audit_keeps_them(
        guarded: MessengerService, clock: FakeClock) -> None:
    """The longest window (the circuit's 900 s) bounds what code_sends keeps; the audit
    trail keeps every send."""
    await guarded.set_phone_number("user-1", "+79161234567")
    assert guarded.admission.retention.total_seconds() == 900
    clock.advance(901)
    await guarded.set_phone_number("user-2", "+79161234568")
    with guarded.engine.connect() as conn:
        numbers = conn.execute(select(code_sends.c.phone_number)).scalars().all()
        sent = conn.execute(select(possession_audit.c.phone_number)
                            .where(possession_audit.c.event == "sent")).scalars().all()
    assert numbers == ["+79161234568"]
    assert sent == ["+79161234567", "+79161234568"]
