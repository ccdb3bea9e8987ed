"""A real operator gateway app on a real database, called over HTTP in process.

Notices the gateway sends are captured by a recording transport; the harness also holds an
organizer's key so tests can obtain tokens exactly as an organizer would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from fastapi import FastAPI

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion, token_request_form
from numident.client.keys import PrivateKey, generate_key
from numident.config import load_settings
from numident.core.clock import Clock, SystemClock
from numident.operator import organizers, registry
from numident.operator.app import create_app
from numident.operator.bootstrap import registry_columns
from numident.operator.gateway import Gateway
from numident.storage.database import create_database_engine

BASE_URL = "http://127.0.0.1:8080"
REDIRECT_URI = "https://chat.example/callback"
SESSION_HEADER = "X-Network-Session"
ADMIN = {"Authorization": "Bearer admin-secret"}
SUBSCRIBERS = """phone_number,contract_id,status,activated_at
+79161234567,C-1,active,2021-03-01
+79161234568,C-2,suspended,2022-04-01T10:00:00+03:00
+79161234569,C-3,terminated,2019-01-01
+79031112233,C-4,active,2024-06-01
"""


@dataclass
class Harness:
    app: FastAPI
    client: httpx2.AsyncClient
    clock: Clock
    home: Path
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    notices: list[httpx2.Request] = field(default_factory=list)
    receiver_status: int = 200

    @property
    def gateway(self) -> Gateway:
        return self.app.state.gateway  # type: ignore[no-any-return]

    def register(self, name: str, notice_url: str | None = None,
                 scopes: Sequence[str] = ("identification",),
                 key: PrivateKey | None = None) -> PrivateKey:
        """Register organizer ``name`` with ``key`` (a fresh Ed25519 key by default),
        ``scopes`` and REDIRECT_URI."""
        key = key or generate_key()
        organizers.add_organizer(self.gateway.engine, name,
                                 notice_url or f"http://127.0.0.1:9/{name}/notices",
                                 json.dumps(key.public_jwk()), self.clock.now(),
                                 scopes=scopes, redirect_uris=[REDIRECT_URI], replace=True)
        self.keys[name] = key
        self.app.state.authenticator.forget(name)
        return key

    def assertion(self, name: str = "chat", audience: str = f"{BASE_URL}/oauth2/token",
                  lifetime: int = 60) -> str:
        return make_client_assertion(self.keys[name], name, audience, self.clock, lifetime)

    async def authorization_code(self, session: str, scope: str, name: str = "chat",
                                 state: str = "s-1") -> str:
        """Run the front channel from a device whose connection is ``session``."""
        response = await self.client.get("/oauth2/authorize", headers={SESSION_HEADER: session},
                                          params={"response_type": "code", "client_id": name,
                                                  "redirect_uri": REDIRECT_URI, "scope": scope,
                                                  "state": state})
        assert response.status_code == 302, response.text
        query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
        assert query.get("state") == state, query
        assert "code" in query, query
        return query["code"]

    async def line_token(self, number: str, scope: str, name: str = "chat",
                         authentication: str = "network") -> str:
        """A three-legged token for ``number``: its device's session, then the code flow."""
        session = f"session-{number}-{authentication}"
        response = await self.client.put(f"/admin/v1/network-sessions/{session}", headers=ADMIN,
                                         json={"phoneNumber": number,
                                               "authentication": authentication})
        assert response.status_code == 204, response.text
        code = await self.authorization_code(session, scope, name)
        response = await self.client.post("/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": self.assertion(name)})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def import_csv(self, text: str, **options: Any) -> registry.ImportReport:
        path = self.home / "export.csv"
        path.write_text(text, encoding="utf-8")
        return registry.import_subscribers(self.gateway.engine, path, now=self.clock.now(),
                                           notice_source=BASE_URL,
                                           handlers=self.gateway.lifecycle,
                                           columns=registry_columns(), **options)

    async def token(self, name: str = "chat", scope: str | None = None) -> str:
        response = await self.client.post("/oauth2/token",
                                          data=token_request_form(self.assertion(name), scope))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def camara(self, path: str, scope: str, body: object,
                     headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        """POST ``body`` (None: no body) to a CAMARA operation; a two-legged ``scope`` token
        unless ``headers`` are given. A success must echo the request's x-correlator."""
        if headers is None:
            headers = {"Authorization": f"Bearer {await self.token(scope=scope)}",
                       "x-correlator": "camara-1"}
        response = await (self.client.post(path, headers=headers, json=body) if body is not None
                          else self.client.post(path, headers=headers))
        if response.status_code == 200:
            assert response.headers.get("x-correlator") == headers.get("x-correlator")
        return response.status_code, response.json()

    async def auth(self, name: str = "chat") -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(name)}"}

    async def identify(self, number: str, code: str, name: str = "chat") -> httpx2.Response:
        return await self.client.post("/identification/v1/requests", headers=await self.auth(name),
                                      json={"phoneNumber": number, "identificationCode": code})

    async def deliver_notices(self) -> int:
        return int(await self.app.state.dispatcher.run_once())


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def make_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Build gateways on the test's database; each is started and stopped with the test."""
    opened: list[tuple[FastAPI, httpx2.AsyncClient, Any]] = []

    async def build(*, clock: Clock | None = None, background: bool = False,
                    register: bool = True, network_sessions: Any = None,
                    listen_url: str | None = None, **operator: Any) -> Harness:
        """A started gateway; ``register`` adds the organizer "chat" with a fresh key."""
        settings = load_settings(None, home=str(tmp_path), database_url=database_url,
                                 operator={"admin_token": "admin-secret", "public_url": BASE_URL,
                                           "camara": {"session_header": SESSION_HEADER},
                                           **operator})
        holder: dict[str, Harness] = {}

        def receive(request: httpx2.Request) -> httpx2.Response:
            harness = holder["h"]
            harness.notices.append(request)
            return httpx2.Response(harness.receiver_status)

        the_clock = clock or SystemClock()
        app = create_app(settings, engine=create_database_engine(database_url), clock=the_clock,
                         notice_transport=httpx2.MockTransport(receive), background=background,
                         network_sessions=network_sessions, listen_url=listen_url)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE_URL)
        opened.append((app, client, lifespan))
        holder["h"] = Harness(app, client, the_clock, tmp_path)
        if register:
            holder["h"].register("chat")
        return holder["h"]

    yield build
    for _app, client, lifespan in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
