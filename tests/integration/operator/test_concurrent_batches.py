"""Batches that confirm the same usages at once, as replicas (or one replica's threads) do."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from numident.client.keys import generate_key
from numident.core.identification import Result
from numident.operator.identification import Item, Organizer, answer_now
from numident.operator.organizers import add_organizer
from numident.operator.tables import subscribers, usages
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LINES = 300


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A gateway database at the newest schema with LINES active subscribers."""
    engine = create_database_engine(database_url)
    upgrade(engine, "operator")
    with engine.begin() as conn:
        conn.execute(subscribers.insert(), [
            {"phone_number": f"+7916{i:07d}", "contract_id": f"C-{i}", "status": "active",
             "activated_at": NOW - timedelta(days=30), "updated_at": NOW}
            for i in range(LINES)])
    yield engine
    engine.dispose()


def test_batches_confirming_the_same_usages_in_opposite_orders_all_answer(
        engine: Engine) -> None:
    """Two writers upserting one set of usages in opposite orders, a code repeated in each,
    take their locks in one order, so neither waits for the other in a cycle: every batch is
    answered (on PostgreSQL a lock cycle is a deadlock, and a batch would fail), and each code
    keeps one active usage."""
    record = add_organizer(engine, "chat", "http://127.0.0.1:9/notices",
                           json.dumps(generate_key().public_jwk()), NOW)
    organizer = Organizer(record.id, record.name)
    items = [Item(f"+7916{i:07d}", f"user-{i}") for i in range(LINES)]
    half = LINES // 2
    # Each batch names one code twice, half-way: its two confirmations are taken in turn.
    orders = [[*items[:half], items[0], *items[half:]],
              [*items[half:][::-1], items[-1], *items[:half][::-1]]]
    rounds = 6
    start = threading.Barrier(len(orders))

    def answer(order: list[Item]) -> list[int]:
        confirmed = []
        for n in range(rounds):
            start.wait(timeout=30)
            views = answer_now(engine, organizer, order, NOW + timedelta(seconds=n))
            confirmed.append(sum(v.result is Result.CONFIRMED for v in views))
        return confirmed

    with ThreadPoolExecutor(len(orders)) as pool:
        answered = list(pool.map(answer, orders))

    assert answered == [[LINES + 1] * rounds] * len(orders)
    with engine.connect() as conn:
        active = conn.execute(select(usages.c.identification_code, func.count())
                              .where(usages.c.status == "active")
                              .group_by(usages.c.identification_code)).all()
    assert sorted(active) == sorted((f"user-{i}", 1) for i in range(LINES))
