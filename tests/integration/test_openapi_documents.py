"""The checked-in OpenAPI documents are the ones the servers serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI

from numident.config import load_settings
from numident.messenger.app import create_app as create_messenger
from numident.operator.app import create_app as create_gateway

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"


@pytest.mark.parametrize(("document", "side"), [("operator-gateway.json", "operator"),
                                                 ("messenger-service.json", "messenger")])
def test_checked_in_document_matches_the_served_one(tmp_path: Path, document: str,
                                                    side: str) -> None:
    """Regenerate with `numident operator openapi` / `numident messenger openapi` on change."""
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app: FastAPI = (create_gateway if side == "operator" else create_messenger)(
        settings, background=False)
    try:
        served = json.loads(json.dumps(app.openapi(), ensure_ascii=False, sort_keys=True))
        assert served == json.loads((DOCS / document).read_text(encoding="utf-8"))
        assert served["info"]["title"].startswith("numident")
    finally:
        engine = app.state.gateway.engine if side == "operator" else app.state.service.engine
        engine.dispose()
