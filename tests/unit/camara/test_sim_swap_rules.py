"""The SIM Swap rules that need no database: maxAge ranges, sinks, sink credentials, routing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from numident.camara.sim_swap import check_range
from numident.camara.sim_swap_delivery import ByKind
from numident.camara.sim_swap_events import OUTBOX_KIND
from numident.camara.sim_swap_subscriptions import SinkCredential, checked_sink, sink_token
from numident.errors import InvalidInput
from numident.outbox.dispatcher import DeliveryOutcome
from numident.outbox.store import OutboxMessage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(("max_age", "days", "refused"), [
    (1, None, False), (2400, None, False), (2401, None, True),
    (720, 30, False), (721, 30, True), (2400, 100, False), (2400, 99, True)])
def test_max_age_is_bounded_by_the_spec_and_the_monitored_period(
        max_age: int, days: int | None, refused: bool) -> None:
    if refused:
        with pytest.raises(InvalidInput) as caught:
            check_range(max_age, days)
        assert caught.value.code == "OUT_OF_RANGE"
    else:
        check_range(max_age, days)


@pytest.mark.parametrize(("sink", "http_allowed", "code"), [
    ("https://bank.example/events", False, None),
    ("http://127.0.0.1:9000/events", True, None),
    ("http://bank.example/events", False, "INVALID_SINK"),
    ("ftp://bank.example/events", True, "INVALID_SINK"),
    ("bank.example/events", False, "INVALID_ARGUMENT"),
    ("https://", False, "INVALID_ARGUMENT"),
    ("https://bank.example:99999/", False, "INVALID_ARGUMENT"),
    ("https://bank.example/a b", False, "INVALID_ARGUMENT")])
def test_a_sink_must_be_an_absolute_url_of_an_allowed_scheme(
        sink: str, http_allowed: bool, code: str | None) -> None:
    if code is None:
        assert checked_sink(sink, http_allowed) == sink
    else:
        with pytest.raises(InvalidInput) as caught:
            checked_sink(sink, http_allowed)
        assert caught.value.code == code


def credential(**fields: object) -> SinkCredential:
    values: dict[str, object] = {"credentialType": "ACCESSTOKEN", "accessToken": "t-1",
                                 "accessTokenExpiresUtc": "2026-04-01T02:00:00+02:00",
                                 "accessTokenType": "bearer"}
    return SinkCredential.model_validate(values | fields)


def test_only_an_unexpired_bearer_access_token_is_a_sink_credential() -> None:
    assert sink_token(None, NOW) == (None, None)
    assert sink_token(credential(), NOW) == ("t-1", datetime(2026, 4, 1, tzinfo=UTC))
    assert sink_token(credential(accessTokenType="Bearer"), NOW)[0] == "t-1"
    refusals = [(credential(credentialType="PLAIN", identifier="u", secret="p"),
                 "INVALID_CREDENTIAL"),
                (credential(accessTokenType="mac"), "INVALID_TOKEN"),
                (credential(accessToken=None), "INVALID_ARGUMENT"),
                (credential(accessTokenExpiresUtc="2026-02-28T23:59:59Z"), "INVALID_CREDENTIAL")]
    for given, code in refusals:
        with pytest.raises(InvalidInput) as caught:
            sink_token(given, NOW)
        assert caught.value.code == code


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: OutboxMessage) -> DeliveryOutcome:
        self.sent.append(message.id)
        return DeliveryOutcome.delivered()


async def test_sim_swap_events_and_notices_take_their_own_senders() -> None:
    notices, sinks = Recorder(), Recorder()
    router = ByKind(notices, sinks)
    for kind, message_id in (("notice", "n-1"), (OUTBOX_KIND, "e-1"), ("notice", "n-2")):
        await router.send(OutboxMessage(id=message_id, kind=kind, destination="https://x",
                                        payload=b"{}", created_at=NOW))
    assert (notices.sent, sinks.sent) == (["n-1", "n-2"], ["e-1"])
