"""Fixtures for the outbox unit tests: a SQLite outbox in tmp_path, a fake clock, a fake sender."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from outbox_fakes import FakeSender
from sqlalchemy import MetaData

from numident.core.clock import FakeClock
from numident.outbox import (
    OutboxMessage,
    RetryPolicy,
    SqlOutbox,
    outbox_table,
)
from numident.storage.database import create_database_engine


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy() -> RetryPolicy:
    """The default schedule without jitter, so that times are exact."""
    return RetryPolicy(jitter=0)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[SqlOutbox]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata = MetaData()
    table = outbox_table(metadata)
    metadata.create_all(engine)
    yield SqlOutbox(engine, table)
    engine.dispose()


@pytest.fixture
def store(outbox: SqlOutbox, clock: FakeClock) -> Callable[..., OutboxMessage]:
    """Commit one message to the outbox, created now, and return it."""
    counter = iter(range(1_000_000))

    def add(message_id: str | None = None, **fields: object) -> OutboxMessage:
        n = next(counter)
        message = OutboxMessage(
            id=message_id or f"evt-{n}", destination="https://organizer.example/notices",
            payload=b'{"n": %d}' % n, created_at=clock.now(), owner="messenger-a",
            **fields,  # type: ignore[arg-type]
        )
        with outbox.engine.begin() as connection:
            outbox.add(connection, message)
        return message

    return add


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()

