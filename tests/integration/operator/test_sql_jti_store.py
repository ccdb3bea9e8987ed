"""The replay store that all gateway replicas share, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from numident.core.clock import FakeClock
from numident.operator.replay import SqlJtiStore
from numident.operator.tables import used_assertions
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade


@pytest.fixture
def engines(database_url: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one migrated database: two replicas."""
    first = create_database_engine(database_url)
    upgrade(first, "operator")
    second = create_database_engine(database_url)
    yield first, second
    first.dispose()
    second.dispose()


def test_a_key_is_accepted_once_on_every_replica_until_it_expires(
        engines: tuple[Engine, Engine]) -> None:
    """The second use is refused, by the other replica too; after expiry the key is free."""
    clock = FakeClock()
    one, other = (SqlJtiStore(engine, clock) for engine in engines)
    expires = clock.now() + timedelta(seconds=3600)
    assert one.remember("chat:1", expires) is True
    assert other.remember("chat:1", expires) is False
    clock.advance(3599)
    assert one.remember("chat:1", expires) is False
    clock.advance(1)
    assert other.remember("chat:1", clock.now() + timedelta(seconds=60)) is True
    assert one.remember("chat:1", clock.now() + timedelta(seconds=60)) is False


def test_keys_of_any_length_are_kept(engines: tuple[Engine, Engine]) -> None:
    """A client's jti may be longer than the column: the store keeps its digest."""
    clock = FakeClock()
    one = SqlJtiStore(engines[0], clock)
    long_key = "chat:" + "j" * 5000
    assert one.remember(long_key, clock.now() + timedelta(seconds=60)) is True
    assert one.remember(long_key, clock.now() + timedelta(seconds=60)) is False
    assert one.remember(long_key[:-1], clock.now() + timedelta(seconds=60)) is True


def test_expired_keys_are_purged_as_new_ones_arrive(engines: tuple[Engine, Engine]) -> None:
    """Once the purge interval has passed, a new key removes the expired ones."""
    clock = FakeClock()
    one = SqlJtiStore(engines[0], clock)
    for number in range(20):
        one.remember(f"chat:{number}", clock.now() + timedelta(seconds=30))
    clock.advance(61)
    one.remember("chat:new", clock.now() + timedelta(seconds=30))
    with engines[1].connect() as conn:
        assert conn.execute(select(func.count()).select_from(used_assertions)).scalar() == 1
