"""The document each served CAMARA version publishes declares what its official one does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from camara_spec import DEFINITION_SETS, ApiDocument, api_documents

from numident.camara.app import served_apis
from numident.config import load_settings
from numident.operator.app import create_app

pytestmark = [pytest.mark.conformance, pytest.mark.anyio]
Document = dict[str, Any]


def official_documents() -> Iterator[ApiDocument]:
    for definitions in DEFINITION_SETS:
        yield from api_documents(definitions.folder)


async def served_documents(tmp_path: Path) -> dict[str, Document]:
    """Every version document the gateway serves, by its root."""
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app = create_app(settings, background=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as client:
            return {api.root: (await client.get(f"{api.root}/openapi.json")).json()
                    for api in served_apis()}
    finally:
        app.state.gateway.engine.dispose()


async def test_each_operation_requires_the_official_security(tmp_path: Path) -> None:
    """Per operationId, the served ``security`` (``openId`` with its scopes, each alternative
    a requirement of its own) is the official document's, and ``openId`` is the OpenID
    Connect discovery scheme."""
    served = await served_documents(tmp_path)
    compared = 0
    for official in official_documents():
        document = served[official.root]
        scheme = document["components"]["securitySchemes"]["openId"]
        assert scheme["type"] == "openIdConnect"
        assert scheme["openIdConnectUrl"].endswith("/.well-known/openid-configuration")
        ours = {operation["operationId"]: operation.get("security")
                for item in document["paths"].values() for operation in item.values()}
        for operation in official.operations:
            assert ours[operation.operation_id] == operation.spec["security"], \
                f"{official.root} {operation.operation_id}"
            compared += 1
    assert compared >= 20
