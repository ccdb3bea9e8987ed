"""Fixtures of the operator gateway's integration tests (see operator_harness)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from operator_harness import BASE_URL, Harness, HarnessFactory

from numident.config import load_settings
from numident.core.clock import Clock, SystemClock
from numident.operator.app import create_app
from numident.storage.database import create_database_engine


@pytest.fixture
async def make_gateway(database_url: str, tmp_path: Path) -> AsyncIterator[HarnessFactory]:
    """Build gateways on the test's database; each is started and stopped with the test."""
    opened: list[tuple[FastAPI, httpx.AsyncClient, Any]] = []

    async def build(*, clock: Clock | None = None, background: bool = False,
                    register: bool = True, **operator: Any) -> Harness:
        """A started gateway; ``register`` adds the organizer "chat" with a fresh key."""
        settings = load_settings(None, home=str(tmp_path), database_url=database_url,
                                 operator={"admin_token": "admin-secret", "public_url": BASE_URL,
                                           **operator})
        holder: dict[str, Harness] = {}

        def receive(request: httpx.Request) -> httpx.Response:
            harness = holder["h"]
            harness.notices.append(request)
            return httpx.Response(harness.receiver_status)

        the_clock = clock or SystemClock()
        app = create_app(settings, engine=create_database_engine(database_url), clock=the_clock,
                         notice_transport=httpx.MockTransport(receive), background=background)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        opened.append((app, client, lifespan))
        holder["h"] = Harness(app, client, the_clock, tmp_path)
        if register:
            holder["h"].register("chat")
        return holder["h"]

    yield build
    for _app, client, lifespan in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
