"""A method a path does not serve is 405 with the error body, and ``Allow`` names every
method that the routes of that path serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from numident.config import load_settings
from numident.messenger.app import create_app as create_messenger
from numident.operator.app import create_app as create_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app = create_gateway(settings, background=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as client:
            yield client
    finally:
        app.state.gateway.engine.dispose()


@pytest.mark.parametrize(("method", "path", "allow"), [
    # /requests/batch is also a value of /requests/{requestId}: GET is routed there.
    ("OPTIONS", "/identification/v1/requests/batch", "GET, POST"),
    ("DELETE", "/identification/v1/requests/batch", "GET, POST"),
    ("GET", "/identification/v1/requests", "POST"),
    ("PUT", "/identification/v1/requests/3f1c", "GET"),
    ("POST", "/admin/v1/organizers/chat/limits", "GET, PUT"),
])
async def test_allow_names_every_method_of_the_path(gateway: httpx.AsyncClient, method: str,
                                                    path: str, allow: str) -> None:
    """The 405 lists the methods of all routes matching the path, not of the first one."""
    response = await gateway.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json() == {"status": 405, "code": "METHOD_NOT_ALLOWED",
                               "message": "Method Not Allowed"}


async def test_the_messenger_names_them_too(tmp_path: Path) -> None:
    """The messenger's 405 comes from the same error mapping."""
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app = create_messenger(settings, background=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://messenger") as client:
            response = await client.delete("/messenger/v1/accounts/a-1/phone-number")
        assert response.status_code == 405
        assert response.headers["allow"] == "PUT"
    finally:
        app.state.service.engine.dispose()
