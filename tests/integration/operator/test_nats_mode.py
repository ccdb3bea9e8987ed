"""The gateway on NATS JetStream: lifecycle events in, signed notices out, against real NATS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory

from numident.client.assertions import ASSERTION_TYPE
from numident.operator.nats_mode import Subjects
from numident.operator.tables import lifecycle_events

pytestmark = [pytest.mark.anyio, pytest.mark.nats]
NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A stream prefix of this test's own; its streams are deleted afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    connection = await nats.connect(NATS_URL)
    js = connection.jetstream()
    for stream in (f"{name.upper()}_LIFECYCLE_OPERATOR", f"{name.upper()}_NOTICES_OPERATOR"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(stream)
    await connection.close()


async def until(condition: object, within: float = 10.0) -> bool:
    for _ in range(int(within / 0.05)):
        if condition():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def test_lifecycle_event_from_nats_is_recorded_once_and_notified(
        make_gateway: HarnessFactory, prefix: str) -> None:
    """An event published twice on the lifecycle subject yields one event and one notice."""
    h: Harness = await make_gateway(background=True, nats_url=NATS_URL, nats_prefix=prefix,
                                    dispatch={"poll_seconds": 0.1})
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "chat-user")
    subjects = Subjects.for_gateway(h.gateway.settings)
    connection = await nats.connect(NATS_URL)
    js = connection.jetstream()
    event = json.dumps({"type": "contract_terminated", "phoneNumber": "+79161234567",
                        "eventId": "billing-1", "occurredAt": "2026-02-01T00:00:00Z"}).encode()
    await js.publish(subjects.lifecycle_subject, event)
    await js.publish(subjects.lifecycle_subject, event)
    await js.publish(subjects.lifecycle_subject, b"{not json")
    try:
        assert await until(lambda: len(h.notices) >= 1)
        await asyncio.sleep(0.5)  # a second notice, were one owed, would have come by now
        assert len(h.notices) == 1
        document = json.loads(h.notices[0].content)
        assert document["data"]["eventId"] == "billing-1"
        assert "signature" in h.notices[0].headers
        with h.gateway.engine.connect() as conn:
            sources = conn.execute(lifecycle_events.select()).all()
        assert [(e.event_id, e.source) for e in sources] == [("billing-1", "nats")]
        listing = (await h.client.get("/admin/v1/notices",
                                      headers={"Authorization": "Bearer admin-secret"})).json()
        assert listing["counts"]["delivered"] == 1
    finally:
        await connection.close()


async def test_ciba_pings_reach_the_client_through_jetstream(
        make_gateway: HarnessFactory, prefix: str) -> None:
    """With several replicas on NATS, a ping-mode CIBA client still gets its ping, with its
    own bearer token and not the notices' signature."""
    h: Harness = await make_gateway(
        background=True, nats_url=NATS_URL, nats_prefix=prefix, dispatch={"poll_seconds": 0.1},
        camara={"sim_swap_http_sinks": True, "sim_swap_private_sinks": True})
    h.register("chat", scopes=["sim-swap:check"])
    h.import_csv(SUBSCRIBERS)
    endpoint = "http://127.0.0.1:9/chat/ciba"
    registered = await h.client.put("/admin/v1/organizers/chat/ciba", json={
        "deliveryMode": "ping", "notificationEndpoint": endpoint},
        headers={"Authorization": "Bearer admin-secret"})
    assert registered.status_code == 204
    started = await h.client.post("/oauth2/bc-authorize", data={
        "login_hint": "tel:+79161234567", "client_notification_token": "nt-1",
        "scope": "dpv:FraudPreventionAndDetection sim-swap:check",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": h.assertion()})
    assert started.status_code == 200, started.text
    assert await until(lambda: any(str(r.url) == endpoint for r in h.notices))
    [ping] = [r for r in h.notices if str(r.url) == endpoint]
    assert ping.headers["authorization"] == "Bearer nt-1"
    assert json.loads(ping.content) == {"auth_req_id": started.json()["auth_req_id"]}
