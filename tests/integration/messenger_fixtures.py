"""Both sides of the exchange in one process: a real operator gateway and a messenger service.

They talk only over HTTP, through ``httpx2.ASGITransport``: the messenger reaches the gateway
through ``transport_for_operator``, the gateway delivers its signed notices to the messenger's
app through its ``notice_transport``. ``Tap`` wraps a transport to record what crossed it and
to let a test act before a request is handled (answer a deferred request, stall a poll).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import Engine

from numident.client.keys import PrivateKey, generate_key
from numident.config import Settings, load_settings
from numident.core.clock import FakeClock
from numident.messenger import tables as _messenger_tables  # noqa: F401 - registers tables
from numident.messenger.app import create_app as create_messenger_app
from numident.messenger.operators import StaticLookup
from numident.messenger.service import MessengerService
from numident.messenger.sms import last_code_in_file
from numident.operator import organizers, registry
from numident.operator.app import create_app as create_gateway_app
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.notice_delivery import notice_dispatcher
from numident.storage.database import create_database_engine
from numident.storage.schema import messenger_metadata

with contextlib.suppress(ImportError):  # the routing tables join the schema once they exist
    from numident.routing import tables as _routing_tables  # noqa: F401

ALPHA = "7707083893"
GATEWAY_URL = "http://alpha.test"
MESSENGER_URL = "http://messenger.test"
NOTICE_URL = f"{MESSENGER_URL}/messenger/v1/notices"
API_TOKEN = "backend-token"
ADMIN_TOKEN = "messenger-admin"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SUBSCRIBERS = {
    "+79161234567": "active",
    "+79161234568": "active",
    "+79161234569": "terminated",
}

Hook = Callable[[httpx2.Request], Awaitable[None]]


class Tap(httpx2.AsyncBaseTransport):
    """Forwards to ``inner``; records each request; awaits ``before`` first when set."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.before: Hook | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        self.requests.append((request.method, request.url.path, dict(request.headers), body))
        if self.before is not None:
            await self.before(request)
        return await self.inner.handle_async_request(request)

    def paths(self, method: str) -> list[str]:
        return [path for m, path, _, _ in self.requests if m == method]


@dataclass
class Exchange:
    """One gateway (operator ``ALPHA``) and one messenger service, wired together."""

    clock: FakeClock
    gateway_engine: Engine
    messenger_engine: Engine
    gateway: FastAPI
    messenger_settings: Settings
    operator_key: PrivateKey
    organizer_key: PrivateKey
    to_gateway: Tap
    to_messenger: Tap
    sms_file: Path
    messenger: FastAPI = field(init=False)
    _notice_http: httpx2.AsyncClient = field(init=False)

    @property
    def service(self) -> MessengerService:
        return self.messenger.state.service  # type: ignore[no-any-return]

    def api(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.messenger),
                                 base_url=MESSENGER_URL, headers=AUTH)

    def start_messenger(self) -> FastAPI:
        """(Re)build the messenger's app over its database, as a process start would."""
        self.messenger = create_messenger_app(
            self.messenger_settings, engine=self.messenger_engine, clock=self.clock,
            transport_for_operator=lambda _inn: self.to_gateway,
            lookup=StaticLookup({"+7916": (ALPHA, "Alpha")}), key=self.organizer_key,
            background=False, migrate=False)
        self.to_messenger.inner = httpx2.ASGITransport(app=self.messenger)
        return self.messenger

    def code_sent_to(self, number: str) -> str:
        code = last_code_in_file(self.sms_file, number)
        assert code is not None, f"no SMS to {number}"
        return code

    async def deliver_notices(self) -> int:
        """Run the gateway's notice dispatcher once (signed POSTs to the messenger)."""
        dispatcher = notice_dispatcher(self.gateway_engine, self._notice_http,
                                       self.operator_key, self.clock,
                                       self.gateway.state.gateway.settings.dispatch)
        return await dispatcher.run_once()


def gateway_settings(tmp_path: Path, database_url: str, *, deferred: bool) -> Settings:
    return load_settings(None, home=str(tmp_path / "gateway-home"), database_url=database_url,
                         operator={"public_url": GATEWAY_URL, "deferred": deferred})


def messenger_settings(tmp_path: Path, operator_key: PrivateKey, sms_file: Path) -> Settings:
    return load_settings(None, home=str(tmp_path / "messenger-home"), messenger={
        "organizer": "chat", "api_token": API_TOKEN, "admin_token": ADMIN_TOKEN,
        "poll_initial_seconds": 1,
        "poll_max_seconds": 30, "sms": {"kind": "file", "path": str(sms_file)},
        # Many accounts from one address into one range: the budgets have tests of their own.
        "possession": {"secret": "integration-secret-0123456789", "circuit": None,
                       "budgets": {"per_address": None, "per_range": None}},
        "operators": [{"inn": ALPHA, "name": "Alpha", "gateway_url": GATEWAY_URL,
                       "notice_public_key": json.dumps(operator_key.public_jwk())}]})


def messenger_database_url(database_url: str, tmp_path: Path) -> str:
    """SQLite: a second file. PostgreSQL: the same database (no table names are shared)."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'messenger.db'}"
    return database_url


@contextlib.asynccontextmanager
async def exchange(database_url: str, tmp_path: Path, *, deferred: bool = False
                   ) -> AsyncIterator[Exchange]:
    """Both sides over ``database_url``, the organizer registered, the subscribers loaded."""
    # Signatures on notices carry the wall-clock time, so the fake clock starts at it.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    operator_key, organizer_key = generate_key(), generate_key()
    gateway_engine = create_database_engine(database_url)
    messenger_engine = create_database_engine(messenger_database_url(database_url, tmp_path))
    messenger_metadata.create_all(messenger_engine)
    to_messenger = Tap(httpx2.MockTransport(lambda _: httpx2.Response(503)))
    gateway = create_gateway_app(gateway_settings(tmp_path, database_url, deferred=deferred),
                                 engine=gateway_engine, clock=clock, key=operator_key,
                                 notice_transport=to_messenger, background=False)
    organizers.add_organizer(gateway_engine, "chat", NOTICE_URL,
                             json.dumps(organizer_key.public_jwk()), clock.now())
    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
        f"{number},c-{number[-4:]},{status},2024-01-01\n"
        for number, status in SUBSCRIBERS.items()), encoding="utf-8")
    registry.import_subscribers(gateway_engine, export, now=clock.now(),
                                notice_source=GATEWAY_URL, handlers=lifecycle_handlers())
    sms_file = tmp_path / "sms.jsonl"
    setup = Exchange(clock, gateway_engine, messenger_engine, gateway,
                     messenger_settings(tmp_path, operator_key, sms_file), operator_key,
                     organizer_key, Tap(httpx2.ASGITransport(app=gateway)), to_messenger,
                     sms_file)
    setup.start_messenger()
    async with httpx2.AsyncClient(transport=to_messenger) as notice_http:
        setup._notice_http = notice_http
        try:
            yield setup
        finally:
            await setup.service.aclose()
            messenger_engine.dispose()
            gateway_engine.dispose()


async def identify(setup: Exchange, api: httpx2.AsyncClient, account: str, number: str
                   ) -> dict[str, Any]:
    """PUT the number, confirm the SMS code, follow the identification; the account view."""
    put = await api.put(f"/messenger/v1/accounts/{account}/phone-number",
                        json={"phoneNumber": number})
    assert put.status_code == 202, put.text
    confirm = await api.post(f"/messenger/v1/accounts/{account}/phone-number/confirm",
                             json={"code": setup.code_sent_to(number)})
    assert confirm.status_code == 202, confirm.text
    await setup.service.run_identifications()
    view = await api.get(f"/messenger/v1/accounts/{account}")
    return view.json()  # type: ignore[no-any-return]
