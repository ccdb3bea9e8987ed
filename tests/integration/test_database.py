"""The storage layer's transactions: snapshot reads and queued SQLite writers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, cast, event, func, insert, select

from numident.storage.database import create_database_engine, read_only, write_transaction
from numident.storage.dialect import driver_sql, timestamp_binder
from numident.storage.types import UtcDateTime

metadata = MetaData()
counter = Table("counter", metadata, Column("id", Integer, primary_key=True),
                Column("value", Integer, nullable=False))


def test_queued_writers_run_one_at_a_time_and_lose_no_update(database_url: str) -> None:
    """Read-modify-write transactions from many threads all land, none interleaved."""
    engine = create_database_engine(database_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(insert(counter).values(id=1, value=0))
        inside = 0
        overlaps = 0
        guard = threading.Lock()

        def bump() -> None:
            nonlocal inside, overlaps
            for _ in range(20):
                with write_transaction(engine) as conn:
                    with guard:
                        inside += 1
                        overlaps += inside > 1
                    value = conn.execute(select(counter.c.value).with_for_update()).scalar_one()
                    time.sleep(0.0005)
                    conn.execute(counter.update().values(value=value + 1))
                    with guard:
                        inside -= 1

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with read_only(engine) as conn:
            assert conn.execute(select(counter.c.value)).scalar_one() == 160
        if engine.dialect.name == "sqlite":
            assert overlaps == 0
    finally:
        engine.dispose()


def test_a_failed_write_releases_the_queue(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        metadata.create_all(engine)
        try:
            with write_transaction(engine) as conn:
                conn.execute(insert(counter).values(id=1, value=1))
                raise RuntimeError("the request failed")
        except RuntimeError:
            pass
        with write_transaction(engine) as conn:  # would wait forever if the lock leaked
            conn.execute(insert(counter).values(id=1, value=2))
        with read_only(engine) as conn:
            assert conn.execute(select(counter.c.value)).scalar_one() == 2
    finally:
        engine.dispose()


def test_sqlite_writers_wait_in_process_not_on_the_file_lock(tmp_path: Path) -> None:
    """A second writer takes no connection (so polls no file lock) until the first is done."""
    engine = create_database_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        metadata.create_all(engine)
        checkouts: list[str] = []
        event.listen(engine, "checkout", lambda *_: checkouts.append(
            threading.current_thread().name))
        first_in, first_may_leave = threading.Event(), threading.Event()

        def first() -> None:
            with write_transaction(engine) as conn:
                conn.execute(insert(counter).values(id=1, value=1))
                first_in.set()
                first_may_leave.wait(5)

        def second() -> None:
            with write_transaction(engine) as conn:
                conn.execute(counter.update().values(value=2))

        a = threading.Thread(target=first, name="first")
        b = threading.Thread(target=second, name="second")
        a.start()
        assert first_in.wait(5)
        b.start()
        b.join(0.2)
        assert b.is_alive()
        assert checkouts == ["first"]
        first_may_leave.set()
        a.join(5)
        b.join(5)
        assert checkouts == ["first", "second"]
        with read_only(engine) as conn:
            assert conn.execute(select(counter.c.value)).scalar_one() == 2
    finally:
        engine.dispose()


def test_driver_level_timestamps_store_what_core_stores(database_url: str) -> None:
    """``timestamp_binder``'s values are stored as the text (or value) a Core insert of the
    same instants stores, whole seconds included, and read back as the instants bound: on
    SQLite, timestamps compare as text, so one instant written two ways would compare
    unequal."""
    stamps = MetaData()
    table = Table("stamps", stamps, Column("id", Integer, primary_key=True),
                  Column("at", UtcDateTime, nullable=True))
    times = [datetime(2020, 1, 2, tzinfo=UTC), datetime(2026, 11, 1, 3, 4, 5, 6, tzinfo=UTC),
             datetime(2024, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=3))), None]
    engine = create_database_engine(database_url)
    try:
        stamps.create_all(engine)
        with engine.begin() as conn:
            stamp = timestamp_binder(conn, table.c.at)
            conn.execute(table.insert(), [{"id": n, "at": at} for n, at in enumerate(times)])
            sql = driver_sql(conn, "INSERT INTO stamps (id, at) VALUES (?, ?)")
            conn.exec_driver_sql(sql, [(10 + n, stamp(at)) for n, at in enumerate(times)])
            conn.exec_driver_sql(sql, [(20 + n, stamp(at)) for n, at in enumerate(times)])
            raw = cast(table.c.at, String)
            stored = [conn.execute(select(table.c.at, raw).where(table.c.id.between(lo, lo + 9))
                                   .order_by(table.c.id)).all() for lo in (0, 10, 20)]
            same = conn.execute(select(func.count()).select_from(table).where(
                table.c.id >= 10, table.c.at.in_([t for t in times if t]))).scalar_one()
        assert stored[1] == stored[2] == stored[0]
        assert [at for at, _ in stored[1]] == [t and t.astimezone(UTC) for t in times]
        assert same == 6  # the instants, bound by Core in a query, find the driver's rows
    finally:
        engine.dispose()
