"""A real operator gateway app on a real database, called over HTTP in process.

Notices the gateway sends are captured by a recording transport; the harness also holds an
organizer's key so tests can obtain tokens exactly as an organizer would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from numident.core.clock import Clock
from numident.operator import organizers, registry
from numident.operator.gateway import Gateway
from numident.trust.assertions import make_client_assertion
from numident.trust.keys import PrivateKey, generate_key
from numident.trust.tokens import token_request_form

BASE_URL = "http://127.0.0.1:8080"
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
    client: httpx.AsyncClient
    clock: Clock
    home: Path
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    notices: list[httpx.Request] = field(default_factory=list)
    receiver_status: int = 200

    @property
    def gateway(self) -> Gateway:
        return self.app.state.gateway  # type: ignore[no-any-return]

    def register(self, name: str, notice_url: str | None = None) -> PrivateKey:
        key = generate_key()
        organizers.add_organizer(self.gateway.engine, name,
                                 notice_url or f"http://127.0.0.1:9/{name}/notices",
                                 json.dumps(key.public_jwk()), self.clock.now())
        self.keys[name] = key
        return key

    def import_csv(self, text: str, **options: Any) -> registry.ImportReport:
        path = self.home / "export.csv"
        path.write_text(text, encoding="utf-8")
        return registry.import_subscribers(self.gateway.engine, path, now=self.clock.now(),
                                           notice_source=BASE_URL, **options)

    async def token(self, name: str = "chat", scope: str | None = None) -> str:
        assertion = make_client_assertion(self.keys[name], name, f"{BASE_URL}/oauth2/token",
                                          self.clock)
        response = await self.client.post("/oauth2/token",
                                          data=token_request_form(assertion, scope))
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def auth(self, name: str = "chat") -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(name)}"}

    async def identify(self, number: str, code: str, name: str = "chat") -> httpx.Response:
        return await self.client.post("/identification/v1/requests", headers=await self.auth(name),
                                      json={"phoneNumber": number, "identificationCode": code})

    async def deliver_notices(self) -> int:
        return int(await self.app.state.dispatcher.run_once())


HarnessFactory = Callable[..., Any]
