"""Fixtures for the outbox integration tests; test modules import them explicitly::

    from outbox_fixtures import outbox_fixture  # noqa: F401

(fixtures are registered under their ``name``, e.g. ``outbox``; the function names differ so
that test parameters do not shadow the imports).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import MetaData

from numident.outbox import OutboxMessage, SqlOutbox, outbox_table
from numident.outbox.nats import connect, ensure_stream
from numident.storage.database import create_database_engine

NATS_URL = os.environ.get("NUMIDENT_TEST_NATS_URL", "nats://127.0.0.1:4222")

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)



@pytest.fixture(name="outbox")
def outbox_fixture(database_url: str) -> Iterator[SqlOutbox]:
    """An empty outbox table on each store (SQLite file, fresh PostgreSQL database)."""
    engine = create_database_engine(database_url)
    metadata = MetaData()
    table = outbox_table(metadata)
    metadata.create_all(engine)
    yield SqlOutbox(engine, table)
    engine.dispose()


def message(
    n: int, *, created_at: datetime = T0, owner: str | None = "messenger-a",
    destination: str = "https://organizer.example/notices",
) -> OutboxMessage:
    return OutboxMessage(
        id=f"evt-{n:05d}", destination=destination, payload=b'{"n": %d}' % n,
        created_at=created_at, owner=owner,
    )


def commit(outbox: SqlOutbox, *messages: OutboxMessage) -> None:
    with outbox.engine.begin() as connection:
        outbox.add_many(connection, messages)


@dataclass(frozen=True)
class NatsStream:
    """A stream of this test's own: ``name`` captures ``{prefix}.>``."""

    nc: NATS
    js: JetStreamContext
    name: str
    prefix: str


@pytest.fixture(name="nats_stream")
async def nats_stream_fixture() -> AsyncIterator[NatsStream]:
    """A JetStream stream with a unique name and subjects, deleted afterwards.

    Runs may overlap on one server, so nothing here is shared with another test.
    """
    nc = await connect(NATS_URL, initial_timeout=5)
    js = nc.jetstream()
    unique = uuid.uuid4().hex[:12]
    stream = NatsStream(nc, js, f"NUMIDENT_TEST_{unique}", f"numident-test-{unique}")
    await ensure_stream(js, stream.name, [f"{stream.prefix}.>"], work_queue=True)
    try:
        yield stream
    finally:
        try:
            await js.delete_stream(stream.name)
        finally:
            await nc.close()
