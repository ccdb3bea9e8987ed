"""SIM Swap subscriptions: the API, and swaps pushed as CloudEvents to the sink via the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx2
import nats
import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from operator_harness import ADMIN, SESSION_HEADER, Harness, HarnessFactory
from sqlalchemy import func, select

from numident.camara import sim_swap_events
from numident.camara.sim_swap_delivery import SinkSender
from numident.camara.tables import sim_swap_subscriptions
from numident.core.clock import FakeClock
from numident.core.notices import NoticeType
from numident.operator.nats_mode import Subjects
from numident.operator.tables import lifecycle_events, outbox, subscribers
from numident.outbox.dispatcher import DeliveryOutcome
from numident.outbox.store import OutboxMessage
from numident.sinks.addresses import SinkGuard

pytestmark = pytest.mark.anyio
SPEC = (Path(__file__).resolve().parents[4] / "shared" / "camara" / "SimSwap"
        / "sim-swap-subscriptions.yaml")
SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
ENDED = "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"
CREATE = f"sim-swap-subscriptions:{SWAPPED}:create"
SCOPES = [CREATE, "sim-swap-subscriptions:read", "sim-swap-subscriptions:delete"]
ROOT = "/sim-swap-subscriptions/vwip/subscriptions"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LINE, OTHER, NOT_SERVED = "+79161234567", "+79031112233", "+79995550003"
SINK = "https://bank.example/sim-swap/events"
NATS_URL = "nats://127.0.0.1:4222"
SECRET = "sink-token-5f1e"


class SteppingClock(FakeClock):
    """A fake clock for background loops: their idle waits take a real instant, not time."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.01)


@cache
def components() -> dict[str, Any]:
    with open(SPEC, encoding="utf-8") as spec:
        return dict(yaml.safe_load(spec)["components"])


def assert_complies(name: str, instance: object) -> None:
    """``instance`` is valid against the spec's schema ``name``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": components()}
    OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(instance)


async def gateway(make_gateway: HarnessFactory, clock: FakeClock | None = None,
                  **options: Any) -> Harness:
    camara = {"session_header": SESSION_HEADER, "not_applicable_prefixes": ["+7999"],
              "sim_swap_private_sinks": True,  # SINK is served by the recording transport
              **options.pop("camara", {})}
    h: Harness = await make_gateway(register=False, clock=clock or FakeClock(NOW),
                                    camara=camara, **options)
    h.register("bank", scopes=SCOPES)
    h.register("shop", scopes=SCOPES)
    h.import_csv(f"phone_number,contract_id,status,activated_at\n{LINE},C-1,active,2021-03-01\n"
                 f"{OTHER},C-4,active,2024-06-01\n{NOT_SERVED},C-9,active,2024-01-01\n")
    return h


async def bearer(h: Harness, name: str = "bank") -> dict[str, str]:
    return {"Authorization": f"Bearer {await h.token(name, ' '.join(SCOPES))}",
            "x-correlator": "sub-1"}


async def line_bearer(h: Harness, number: str, name: str = "bank") -> dict[str, str]:
    return {"Authorization": f"Bearer {await h.line_token(number, ' '.join(SCOPES), name)}"}


def request_body(phone_number: str | None = LINE, **config: Any) -> dict[str, Any]:
    detail = {} if phone_number is None else {"phoneNumber": phone_number}
    return {"protocol": "HTTP", "sink": SINK, "types": [SWAPPED],
            "sinkCredential": {"credentialType": "ACCESSTOKEN", "accessToken": SECRET,
                               "accessTokenExpiresUtc": "2026-06-01T00:00:00Z",
                               "accessTokenType": "bearer"},
            "config": {"subscriptionDetail": detail, **config}}


async def subscribe(h: Harness, body: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await h.client.post(ROOT, json=body or request_body(),
                                   headers=headers or await bearer(h))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def swap(h: Harness, number: str = LINE, at: datetime = NOW) -> None:
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "sim_swapped", "phoneNumber": number, "occurredAt": at.isoformat()})
    assert response.status_code == 201, response.text


def received(h: Harness) -> list[dict[str, Any]]:
    """The CloudEvents the sink received so far, each checked against the spec's schema."""
    documents = []
    for request in h.notices:
        assert str(request.url) == SINK
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        assert request.headers["content-type"] == "application/cloudevents+json"
        document = json.loads(request.content)
        assert_complies("EventSimSwap" if document["type"] == SWAPPED
                        else "EventSubscriptionEnded", document)
        documents.append(document)
    return documents


async def test_a_subscription_is_created_shown_listed_and_never_reveals_its_credential(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    headers = await bearer(h)
    response = await h.client.post(ROOT, json=request_body(subscriptionMaxEvents=5,
                                                           subscriptionExpireTime=
                                                           "2026-04-01T00:00:00+02:00"),
                                   headers=headers)
    created = response.json()
    shown = await h.client.get(f"{ROOT}/{created['id']}", headers=headers)
    listed = await h.client.get(ROOT, headers=headers)
    assert response.status_code == 201
    assert response.headers["x-correlator"] == "sub-1"
    assert_complies("Subscription", created)
    assert created == {
        "protocol": "HTTP", "sink": SINK, "types": [SWAPPED], "id": created["id"],
        "config": {"subscriptionDetail": {"phoneNumber": LINE}, "subscriptionMaxEvents": 5,
                   "subscriptionExpireTime": "2026-03-31T22:00:00Z"},
        "startsAt": "2026-03-01T12:00:00Z", "expiresAt": "2026-03-31T22:00:00Z",
        "status": "ACTIVE"}
    assert shown.status_code == 200
    assert shown.json() == created
    assert listed.json() == [created]
    for answer in (response, shown, listed):
        assert SECRET not in answer.text
        assert "sinkCredential" not in answer.text


async def test_only_the_organizer_that_subscribed_sees_or_deletes_it(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    created = await subscribe(h)
    shop = await bearer(h, "shop")
    shown = await h.client.get(f"{ROOT}/{created['id']}", headers=shop)
    deleted = await h.client.delete(f"{ROOT}/{created['id']}", headers=shop)
    listed = await h.client.get(ROOT, headers=shop)
    assert (shown.status_code, shown.json()["code"]) == (404, "NOT_FOUND")
    assert (deleted.status_code, deleted.json()["code"]) == (404, "NOT_FOUND")
    assert listed.json() == []
    still = await h.client.get(f"{ROOT}/{created['id']}", headers=await bearer(h))
    assert still.status_code == 200


async def test_a_three_legged_subscription_keeps_its_line_out_of_answers_and_events(
        make_gateway: HarnessFactory) -> None:
    """The line comes from the token; answers and events never carry it; a token for another
    line lists nothing."""
    h = await gateway(make_gateway)
    token = await line_bearer(h, LINE)
    created = await subscribe(h, request_body(None), token)
    listed = await h.client.get(ROOT, headers=token)
    other = await h.client.get(ROOT, headers=await line_bearer(h, OTHER))
    other_get = await h.client.get(f"{ROOT}/{created['id']}",
                                   headers=await line_bearer(h, OTHER))
    both = await h.client.post(ROOT, json=request_body(LINE), headers=token)
    await swap(h)
    await h.deliver_notices()
    assert created["config"] == {"subscriptionDetail": {}}
    assert listed.json() == [created]
    assert (other.status_code, other.json()) == (200, [])
    assert other_get.status_code == 404
    assert (both.status_code, both.json()["code"]) == (422, "UNNECESSARY_IDENTIFIER")
    [event] = received(h)
    assert event["data"] == {"subscriptionId": created["id"]}


async def test_a_swap_is_pushed_to_the_sink_with_the_bearer_credential(
        make_gateway: HarnessFactory) -> None:
    """One swapped CloudEvent per subscription of the line, timed at the swap."""
    h = await gateway(make_gateway)
    created = await subscribe(h)
    await subscribe(h, request_body(OTHER))
    await swap(h, at=NOW - timedelta(minutes=3))
    assert await h.deliver_notices() == 1
    [event] = received(h)
    assert event["type"] == SWAPPED
    assert event["specversion"] == "1.0"
    assert event["datacontenttype"] == "application/json"
    assert event["source"] == "http://127.0.0.1:8080"
    assert event["time"] == "2026-03-01T11:57:00Z"
    assert event["data"] == {"phoneNumber": LINE, "subscriptionId": created["id"]}
    assert h.notices[0].headers["idempotency-key"] == event["id"]


async def test_max_events_reached_ends_the_subscription_after_the_last_event(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    created = await subscribe(h, request_body(subscriptionMaxEvents=1))
    await swap(h)
    await swap(h, at=NOW + timedelta(seconds=1))
    assert await h.deliver_notices() == 2
    documents = sorted(received(h), key=lambda d: d["type"] != SWAPPED)
    assert [d["type"] for d in documents] == [SWAPPED, ENDED]
    assert documents[1]["data"] == {
        "phoneNumber": LINE, "subscriptionId": created["id"],
        "terminationReason": "MAX_EVENTS_REACHED",
        "terminationDescription": "the maximum number of events has been sent"}
    gone = await h.client.get(f"{ROOT}/{created['id']}", headers=await bearer(h))
    assert gone.status_code == 404


async def test_deleting_a_subscription_sends_subscription_ended(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    created = await subscribe(h)
    headers = await bearer(h)
    deleted = await h.client.delete(f"{ROOT}/{created['id']}", headers=headers)
    again = await h.client.delete(f"{ROOT}/{created['id']}", headers=headers)
    await swap(h)
    await h.deliver_notices()
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert deleted.headers["content-type"] == "application/json"
    assert deleted.headers["x-correlator"] == "sub-1"
    assert (again.status_code, again.json()["code"]) == (404, "NOT_FOUND")
    [event] = received(h)
    assert event["type"] == ENDED
    assert event["time"] == "2026-03-01T12:00:00Z"
    assert event["data"]["terminationReason"] == "SUBSCRIPTION_DELETED"
    assert event["data"]["phoneNumber"] == LINE


@pytest.mark.parametrize("kind", ["number_reassigned", "contract_terminated",
                                  "number_ported_out", "holder_changed"])
async def test_a_line_whose_holder_is_gone_ends_its_subscriptions(
        make_gateway: HarnessFactory, kind: str) -> None:
    """The next holder's SIM changes are not sent to whoever watched the previous holder."""
    h = await gateway(make_gateway)
    created = await subscribe(h)
    ended = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": kind, "phoneNumber": LINE, "occurredAt": NOW.isoformat(),
        **({"newContractId": "C-NEW"} if kind in ("number_reassigned", "holder_changed")
           else {})})
    assert ended.status_code == 201, ended.text
    await swap(h)
    await h.deliver_notices()
    [event] = received(h)
    assert (event["type"], event["data"]["subscriptionId"]) == (ENDED, created["id"])
    assert event["data"]["terminationReason"] == "NETWORK_TERMINATED"
    shown = await h.client.get(f"{ROOT}/{created['id']}", headers=await bearer(h))
    assert shown.status_code == 404


async def test_staff_list_and_end_subscriptions(make_gateway: HarnessFactory) -> None:
    """The operator's staff see every active subscription and may stop one."""
    h = await gateway(make_gateway)
    created = await subscribe(h)
    assert (await h.client.get("/admin/v1/sim-swap-subscriptions")).status_code == 401
    listed = await h.client.get("/admin/v1/sim-swap-subscriptions", headers=ADMIN,
                                params={"phoneNumber": LINE, "organizer": "bank"})
    [shown] = listed.json()["subscriptions"]
    assert (shown["id"], shown["organizer"], shown["phoneNumber"], shown["sink"]) == (
        created["id"], "bank", LINE, SINK)
    assert "sinkCredential" not in shown
    other = await h.client.get("/admin/v1/sim-swap-subscriptions", headers=ADMIN,
                               params={"organizer": "nobody"})
    assert other.json() == {"subscriptions": []}
    path = f"/admin/v1/sim-swap-subscriptions/{created['id']}"
    assert (await h.client.delete(path, headers=ADMIN)).status_code == 204
    again = await h.client.delete(path, headers=ADMIN)
    assert (again.status_code, again.json()["code"]) == (404, "SUBSCRIPTION_NOT_FOUND")
    await h.deliver_notices()
    [event] = received(h)
    assert event["data"]["terminationReason"] == "NETWORK_TERMINATED"
    gone = await h.client.get("/admin/v1/sim-swap-subscriptions", headers=ADMIN)
    assert gone.json() == {"subscriptions": []}


async def test_expiry_ends_a_subscription_without_any_traffic(
        make_gateway: HarnessFactory) -> None:
    """The gateway's background sweep ends it and its dispatcher delivers the event."""
    clock = SteppingClock(NOW)
    h = await gateway(make_gateway, clock, background=True,
                      dispatch={"poll_seconds": 0.05})
    created = await subscribe(h, request_body(subscriptionExpireTime="2026-03-01T13:00:00Z"))
    clock.advance(2 * 3600)
    await wait_for(lambda: len(h.notices) == 1)
    [event] = received(h)
    assert event["data"]["terminationReason"] == "SUBSCRIPTION_EXPIRED"
    assert event["time"] == "2026-03-01T13:00:00Z"
    gone = await h.client.get(f"{ROOT}/{created['id']}", headers=await bearer(h))
    assert gone.status_code == 404


async def test_the_sink_token_expiry_ends_the_subscription(make_gateway: HarnessFactory) -> None:
    """The sweep ends a subscription once its sink token expires (2026-06-01), only once."""
    clock = FakeClock(NOW)
    h = await gateway(make_gateway, clock)
    await subscribe(h)
    engine = h.gateway.engine
    ended = []
    for days in (30, 62, 1):
        clock.advance(days * 86400)
        ended.append(sim_swap_events.sweep(engine, clock.now(), "urn:test"))
    await h.deliver_notices()
    assert ended == [0, 1, 0]
    [event] = received(h)
    assert event["data"]["terminationReason"] == "ACCESS_TOKEN_EXPIRED"
    assert event["time"] == "2026-06-01T00:00:00Z"
    assert event["source"] == "urn:test"


async def test_a_failing_sink_is_retried_with_backoff(make_gateway: HarnessFactory) -> None:
    clock = FakeClock(NOW)
    h = await gateway(make_gateway, clock)
    await subscribe(h)
    await swap(h)
    h.receiver_status = 503
    assert await h.deliver_notices() == 0
    assert await h.deliver_notices() == 0  # not due yet: backing off
    h.receiver_status = 204
    clock.advance(10)
    assert await h.deliver_notices() == 1
    assert len(h.notices) == 2
    assert h.notices[0].content == h.notices[1].content
    listed = (await h.client.get("/admin/v1/notices", headers=ADMIN,
                                 params={"organizer": "bank"})).json()
    assert [(n["status"], n["attempts"]) for n in listed["notices"]] == [("delivered", 2)]


async def test_the_event_commits_with_the_swap_or_not_at_all(
        make_gateway: HarnessFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's path (``Gateway.record_event``) writes the event in the swap's transaction: when it
    cannot be written, the swap is not recorded either."""
    h = await gateway(make_gateway)
    await subscribe(h)
    engine = h.gateway.engine

    def broken(*args: object) -> None:
        raise RuntimeError("outbox unavailable")

    def state() -> tuple[int, int, object]:
        with engine.connect() as conn:
            return (conn.execute(select(func.count()).select_from(lifecycle_events)).scalar_one(),
                    conn.execute(select(func.count()).select_from(outbox)).scalar_one(),
                    conn.execute(select(subscribers.c.sim_changed_at)
                                 .where(subscribers.c.phone_number == LINE)).scalar_one())

    with monkeypatch.context() as patched:
        patched.setattr(sim_swap_events, "_message", broken)
        with pytest.raises(RuntimeError):
            h.gateway.record_event(NoticeType.SIM_SWAPPED, LINE, source="cli",
                                   occurred_at=NOW)
    assert state() == (0, 0, None)
    h.gateway.record_event(NoticeType.SIM_SWAPPED, LINE, source="cli", occurred_at=NOW)
    assert state() == (1, 1, NOW)


@pytest.mark.parametrize(("change", "code"), [
    (lambda b: b.update(protocol="MQTT3"), "INVALID_PROTOCOL"),
    (lambda b: b.update(protocol="SMTP"), "INVALID_PROTOCOL"),
    (lambda b: b["sinkCredential"].update(credentialType="PLAIN"), "INVALID_CREDENTIAL"),
    (lambda b: b["sinkCredential"].update(credentialType="REFRESHTOKEN"), "INVALID_CREDENTIAL"),
    (lambda b: b["sinkCredential"].update(accessTokenExpiresUtc="2026-02-01T00:00:00Z"),
     "INVALID_CREDENTIAL"),
    (lambda b: b["sinkCredential"].update(accessTokenType="mac"), "INVALID_TOKEN"),
    (lambda b: b.update(types=["org.camaraproject.sim-swap-subscriptions.v0.other"]),
     "INVALID_ARGUMENT"),
    (lambda b: b.update(types=[SWAPPED, SWAPPED]), "INVALID_ARGUMENT"),
    (lambda b: b["config"].update(subscriptionExpireTime="2026-03-01T11:59:59Z"),
     "INVALID_ARGUMENT"),
    (lambda b: b["config"].update(subscriptionExpireTime="2026-04-01T00:00:00"),
     "INVALID_ARGUMENT"),
    (lambda b: b["config"].update(subscriptionMaxEvents=0), "INVALID_ARGUMENT"),
    (lambda b: b.update(sink="not an url"), "INVALID_ARGUMENT"),
    (lambda b: b.update(sink="http://bank.example/events"), "INVALID_SINK"),
    (lambda b: b.pop("protocol"), "INVALID_ARGUMENT"),
    (lambda b: b.pop("sink"), "INVALID_ARGUMENT"),
    (lambda b: b.pop("types"), "INVALID_ARGUMENT"),
    (lambda b: b["config"]["subscriptionDetail"].pop("phoneNumber"), "INVALID_ARGUMENT"),
    (lambda b: b["config"]["subscriptionDetail"].update(phoneNumber="8916"), "INVALID_ARGUMENT"),
    (lambda b: b.update(initialEvent=True), "INVALID_ARGUMENT"),
])
async def test_creation_refuses_what_the_spec_refuses(
        make_gateway: HarnessFactory, change: Callable[[dict[str, Any]], object],
        code: str) -> None:
    h = await gateway(make_gateway)
    body = request_body()
    change(body)
    response = await h.client.post(ROOT, json=body, headers=await bearer(h))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert (await h.client.get(ROOT, headers=await bearer(h))).json() == []


@pytest.mark.parametrize(("phone_number", "status", "code"), [
    (None, 422, "MISSING_IDENTIFIER"), ("", 422, "MISSING_IDENTIFIER"),
    (NOT_SERVED, 422, "UNSUPPORTED_IDENTIFIER"), ("+79035559999", 404, "IDENTIFIER_NOT_FOUND"),
])
async def test_the_line_must_be_named_and_served(make_gateway: HarnessFactory,
                                                 phone_number: str | None, status: int,
                                                 code: str) -> None:
    """With a two-legged token a null or empty phoneNumber names no line."""
    h = await gateway(make_gateway)
    body = request_body()
    body["config"]["subscriptionDetail"]["phoneNumber"] = phone_number
    response = await h.client.post(ROOT, json=body, headers=await bearer(h))
    assert (response.status_code, response.json()["code"]) == (status, code)


async def test_plain_http_sinks_only_when_the_operator_allows_them(
        make_gateway: HarnessFactory) -> None:
    body = request_body() | {"sink": "http://127.0.0.1:9000/events"}
    h = await gateway(make_gateway)
    refused = await h.client.post(ROOT, json=body, headers=await bearer(h))
    h2 = await gateway(make_gateway, camara={"sim_swap_http_sinks": True})
    accepted = await h2.client.post(ROOT, json=body, headers=await bearer(h2))
    assert refused.json()["code"] == "INVALID_SINK"
    assert accepted.status_code == 201


async def test_tokens_are_required_and_must_grant_the_operation(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    missing = await h.client.post(ROOT, json=request_body())
    forged = await h.client.get(ROOT, headers={"Authorization": "Bearer x.y.z"})
    read_only = {"Authorization": "Bearer "
                 + await h.token("bank", "sim-swap-subscriptions:read")}
    denied = await h.client.post(ROOT, json=request_body(), headers=read_only)
    listed = await h.client.get(ROOT, headers=read_only)
    assert (missing.status_code, missing.json()["code"]) == (401, "UNAUTHENTICATED")
    assert (forged.status_code, forged.json()["code"]) == (401, "UNAUTHENTICATED")
    assert (denied.status_code, denied.json()["code"]) == (403, "PERMISSION_DENIED")
    assert listed.status_code == 200


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` while the gateway's background tasks work."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not become true in time")


@pytest.mark.nats
async def test_on_nats_a_swap_event_reaches_the_sink_through_its_own_consumer(
        make_gateway: HarnessFactory) -> None:
    """With several replicas on JetStream, a swap published on the lifecycle subject reaches
    the sink with the bearer credential, next to the signed notices' consumer."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    h: Harness = await make_gateway(register=False, background=True, nats_url=NATS_URL,
                                    nats_prefix=prefix, dispatch={"poll_seconds": 0.1},
                                    camara={"session_header": SESSION_HEADER,
                                            "sim_swap_private_sinks": True})
    h.register("bank", scopes=SCOPES)
    h.import_csv(f"phone_number,contract_id,status,activated_at\n{LINE},C-1,active,2021-03-01\n")
    body = request_body()
    body["sinkCredential"]["accessTokenExpiresUtc"] = "2999-01-01T00:00:00Z"
    created = await subscribe(h, body)
    subjects = Subjects.for_gateway(h.gateway.settings)
    connection = await nats.connect(NATS_URL)
    try:
        await connection.jetstream().publish(subjects.lifecycle_subject, json.dumps(
            {"type": "sim_swapped", "phoneNumber": LINE, "eventId": "hlr-1"}).encode())
        await wait_for(lambda: len(h.notices) == 1)
        [event] = received(h)
        assert event["data"] == {"phoneNumber": LINE, "subscriptionId": created["id"]}
        assert "signature" not in h.notices[0].headers
    finally:
        js = connection.jetstream()
        for stream in (subjects.lifecycle_stream, subjects.notice_stream):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(stream)
        await connection.close()


# -- sinks inside the operator's network, and the sink credential at rest ---------------------

def stored_tokens(h: Harness) -> dict[str, str | None]:
    """Each subscription's ``sink_token`` column as stored."""
    with h.gateway.engine.connect() as conn:
        rows = conn.execute(select(sim_swap_subscriptions.c.id,
                                   sim_swap_subscriptions.c.sink_token)).all()
    return {row.id: row.sink_token for row in rows}


def store_token(h: Harness, subscription_id: str, stored: str) -> None:
    with h.gateway.engine.begin() as conn:
        conn.execute(sim_swap_subscriptions.update()
                     .where(sim_swap_subscriptions.c.id == subscription_id)
                     .values(sink_token=stored))


async def attempts(h: Harness) -> list[tuple[str, int, str | None]]:
    """(status, attempts, lastError) of the bank's outbox messages, newest first."""
    listed = (await h.client.get("/admin/v1/notices", headers=ADMIN,
                                 params={"organizer": "bank"})).json()
    return [(n["status"], n["attempts"], n["lastError"]) for n in listed["notices"]]


async def test_sinks_inside_the_operators_network_are_refused(
        make_gateway: HarnessFactory) -> None:
    """Addresses and names of loopback, private, link-local (cloud metadata) or unspecified
    addresses, and names that do not resolve, are INVALID_SINK; a global address is served."""
    h = await gateway(make_gateway, camara={"sim_swap_private_sinks": False})
    headers = await bearer(h)
    refused = {}
    for sink in ("https://127.0.0.1:8443/events", "https://localhost/events",
                 "https://2130706433/events", "https://10.20.30.40/events",
                 "https://169.254.169.254/latest/meta-data", "https://[::ffff:192.168.1.10]/",
                 "https://0.0.0.0/events", "https://no-such-sink.invalid/events"):
        response = await h.client.post(ROOT, json=request_body() | {"sink": sink},
                                       headers=headers)
        refused[sink] = (response.status_code, response.json()["code"])
    public = await h.client.post(ROOT, json=request_body() | {"sink": "https://93.184.215.14/e"},
                                 headers=headers)
    localhost = await h.client.post(ROOT, json=request_body() | {"sink": "https://localhost/"},
                                    headers=headers)
    assert set(refused.values()) == {(400, "INVALID_SINK")}, refused
    assert localhost.json()["message"].startswith("sink not allowed: localhost resolves to ")
    assert localhost.json()["message"].endswith(", a loopback address")
    assert public.status_code == 201
    assert list(stored_tokens(h)) == [public.json()["id"]]


async def test_delivery_checks_the_sink_again_and_fails_the_attempt_without_connecting(
        make_gateway: HarnessFactory) -> None:
    """A subscription accepted while private sinks were allowed is not delivered to once they
    are not: the attempt fails with the reason recorded, and is retried like any failure."""
    clock = FakeClock(NOW)
    allowed = await gateway(make_gateway, clock)
    await subscribe(allowed, request_body() | {"sink": "https://localhost:8443/events"})
    await swap(allowed)
    h = await gateway(make_gateway, clock, camara={"sim_swap_private_sinks": False})
    assert await h.deliver_notices() == 0
    [(status, tries, error)] = await attempts(h)
    assert (status, tries) == ("pending", 1)
    assert error is not None
    assert error.startswith("sink refused: localhost resolves to ")
    assert error.endswith(", a loopback address")
    assert h.notices == []


async def test_each_send_resolves_the_sink_anew(make_gateway: HarnessFactory) -> None:
    """A name that resolved to a global address and now resolves inside is not sent to."""
    h = await gateway(make_gateway)
    await subscribe(h, request_body() | {"sink": "https://sink.bank.example/events"})
    await swap(h)
    answers = iter([["93.184.215.14"], ["93.184.215.14", "10.0.0.7"]])
    sent: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(204)

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client:
        sender = SinkSender(client, h.gateway.engine, h.app.state.sink_cipher,
                            SinkGuard(resolve=lambda host, port: next(answers)), now=h.clock.now)
        message = queued(h)
        first = await sender.send(message)
        second = await sender.send(message)
    assert first == DeliveryOutcome.delivered()
    assert second == DeliveryOutcome.retry(
        "sink refused: sink.bank.example resolves to 10.0.0.7, a private address")
    assert [r.headers["authorization"] for r in sent] == [f"Bearer {SECRET}"]


def queued(h: Harness) -> OutboxMessage:
    """The one SIM swap event in the outbox."""
    with h.gateway.engine.connect() as conn:
        row = conn.execute(select(outbox).where(
            outbox.c.kind == sim_swap_events.OUTBOX_KIND)).one()
    return OutboxMessage(id=row.id, kind=row.kind, owner=row.owner, destination=row.destination,
                         content_type=row.content_type, payload=row.payload,
                         created_at=row.created_at)


async def test_the_sink_token_is_stored_sealed_and_sent_in_clear(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    first, second = await subscribe(h), await subscribe(h)
    await swap(h)
    stored = stored_tokens(h)
    assert await h.deliver_notices() == 2
    assert len(received(h)) == 2  # each with Authorization: Bearer SECRET
    assert all(value is not None and value.startswith("v1:") for value in stored.values())
    assert not any(SECRET in str(value) for value in stored.values())
    assert stored[first["id"]] != stored[second["id"]]
    with h.gateway.engine.connect() as conn:
        payloads = conn.execute(select(outbox.c.payload)).scalars().all()
    assert not any(SECRET.encode() in payload for payload in payloads)


async def test_a_tampered_or_moved_sealed_token_fails_the_delivery(
        make_gateway: HarnessFactory) -> None:
    """An altered value, or one copied from another subscription, does not open: the attempt
    fails with the reason recorded and nothing is sent."""
    h = await gateway(make_gateway)
    tampered, moved = await subscribe(h), await subscribe(h, request_body(OTHER))
    stored = stored_tokens(h)
    value = str(stored[tampered["id"]])
    store_token(h, tampered["id"], value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    store_token(h, moved["id"], value)
    await swap(h)
    await swap(h, OTHER)
    assert await h.deliver_notices() == 0
    assert h.notices == []
    unreadable = "the sink token does not open: altered, or sealed under another holder key"
    assert sorted(await attempts(h)) == sorted(
        ("pending", 1, f"subscription {s['id']}: {unreadable}") for s in (tampered, moved))


async def test_another_holder_key_cannot_open_the_stored_tokens(
        make_gateway: HarnessFactory) -> None:
    """A gateway whose holder key changed fails those deliveries instead of crashing."""
    first = await gateway(make_gateway)
    created = await subscribe(first)
    await swap(first)
    h = await gateway(make_gateway, camara={"holder_key": "ab" * 32})
    assert await h.deliver_notices() == 0
    assert h.notices == []
    assert await attempts(h) == [("pending", 1, f"subscription {created['id']}: the sink token "
                                  "does not open: altered, or sealed under another holder key")]
