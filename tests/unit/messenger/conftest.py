"""Fixtures for the messenger unit tests: a SQLite file, a fake clock, a scripted gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from messenger_fakes import ALPHA, BETA, LOOKUP, ScriptedGateway, make_settings
from sqlalchemy import Engine

from numident.client.keys import PrivateKey, generate_key
from numident.config import Settings
from numident.core.clock import FakeClock
from numident.messenger import tables as _tables  # noqa: F401 - registers the tables
from numident.messenger.bootstrap import Transports, bootstrap
from numident.messenger.service import MessengerService
from numident.messenger.sms import MemorySmsSender
from numident.storage.database import create_database_engine
from numident.storage.schema import messenger_metadata


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'messenger.db'}")
    messenger_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def operator_keys() -> dict[str, PrivateKey]:
    """The notice-signing keys of the two configured operators."""
    return {ALPHA: generate_key(), BETA: generate_key("ES256")}


@pytest.fixture
def settings(tmp_path: Path, operator_keys: dict[str, PrivateKey]) -> Settings:
    return make_settings(tmp_path, operator_keys)


@pytest.fixture
def gateway(clock: FakeClock) -> ScriptedGateway:
    return ScriptedGateway(clock)


@pytest.fixture
def sms() -> MemorySmsSender:
    return MemorySmsSender()


@pytest.fixture
async def service(settings: Settings, engine: Engine, clock: FakeClock,
                  gateway: ScriptedGateway, sms: MemorySmsSender
                  ) -> AsyncIterator[MessengerService]:
    service = bootstrap(settings, engine=engine, clock=clock,
                        transports=Transports(operator=gateway.transport), sms_sender=sms,
                        lookup=LOOKUP, key=generate_key()).service
    yield service
    await service.aclose()
