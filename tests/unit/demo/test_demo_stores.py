"""The demo's servers each keep their own store, whatever the environment names."""

from __future__ import annotations

from pathlib import Path

import pytest

from numident.client.keys import generate_key
from numident.demo import stage
from numident.demo.data import OPERATORS


@pytest.mark.parametrize("variable", ["NUMIDENT_HOME", "NUMIDENT_DATABASE_URL"])
def test_each_demo_server_has_its_own_database_under_the_demo_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """NUMIDENT_HOME or NUMIDENT_DATABASE_URL names one installation; the demo runs four
    servers, so each keeps its SQLite file and keys in its own folder under the demo's."""
    monkeypatch.setenv(variable, "sqlite:////elsewhere/one.db" if "URL" in variable
                       else str(tmp_path / "installation"))
    root = tmp_path / "demo"
    gateways = [stage.gateway_settings(root, op, 8000 + n) for n, op in enumerate(OPERATORS)]
    keys = {op.key: (8000 + n, generate_key()) for n, op in enumerate(OPERATORS)}
    messenger = stage.messenger_settings(root, 9000, keys, "token")
    urls = [s.database_url_for("operator") for s in gateways]
    assert urls == [f"sqlite:///{(root / op.key / 'operator.db').resolve()}"
                    for op in OPERATORS]
    assert [s.home for s in gateways] == [root / op.key for op in OPERATORS]
    assert messenger.home == root / "messenger"
    assert messenger.database_url_for("messenger") == \
        f"sqlite:///{(root / 'messenger' / 'messenger.db').resolve()}"
