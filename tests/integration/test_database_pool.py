"""How many database connections a server process may hold: ``database_pool_size``."""

from __future__ import annotations

from pathlib import Path

import pytest

from numident.config import load_settings
from numident.errors import ConfigurationError
from numident.messenger.app import create_app as create_messenger
from numident.operator.app import create_app as create_gateway


def test_both_servers_keep_the_configured_pool_and_as_many_again_in_bursts(
        tmp_path: Path) -> None:
    """Replicas on one PostgreSQL server share its max_connections, so each process's pool is
    a setting: both servers open at most ``database_pool_size`` kept connections plus as many
    for bursts."""
    settings = load_settings(None, home=tmp_path, database_pool_size=3,
                             database_url=f"sqlite:///{tmp_path / 'both.db'}")
    gateway = create_gateway(settings, background=False).state.gateway.engine
    messenger = create_messenger(settings, background=False).state.service.engine
    for engine in (gateway, messenger):
        assert (engine.pool.size(), engine.pool._max_overflow) == (3, 3)  # type: ignore
        engine.dispose()


@pytest.mark.parametrize("value", [0, "many"])
def test_a_bad_pool_size_stops_the_start_naming_the_key(value: object) -> None:
    """Zero or a word is refused when the settings are read, naming database_pool_size."""
    with pytest.raises(ConfigurationError, match="database_pool_size"):
        load_settings(None, database_pool_size=value)
