"""The messenger's store under concurrency: reads never wait for writers, writers queue.

Parametrised over SQLite and PostgreSQL. On SQLite one writer holds the file at a time; reads
run on a WAL snapshot and must not take the write lock, or they queue behind every writer
(and behind each other) until some of them time out with ``database is locked``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import anyio
import httpx2
import pytest
from messenger_fixtures import exchange, messenger_database_url
from sqlalchemy import text

from numident.storage.database import create_database_engine

pytestmark = pytest.mark.anyio
READERS, READS_EACH = 24, 10
WRITERS, WRITES_EACH = 12, 8



async def _put(api: httpx2.AsyncClient, account: str, n: int) -> int:
    response = await api.put(f"/messenger/v1/accounts/{account}/phone-number",
                             json={"phoneNumber": f"+7916{n:07d}"})
    return response.status_code


async def test_reads_are_served_while_another_process_holds_the_write_lock(
        database_url: str, tmp_path: Path) -> None:
    """A long write elsewhere (an import, another replica) does not stall account reads."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        assert {await _put(api, f"user-{n}", n) for n in range(4)} == {202}
        other = create_database_engine(messenger_database_url(database_url, tmp_path))
        holding, reads_done = threading.Event(), threading.Event()
        served_while_held: list[int] = []
        served = 0

        def hold_the_write_lock() -> None:
            with other.begin() as conn:
                conn.execute(text("UPDATE accounts SET updated_at = updated_at"))
                holding.set()
                # Released once every read is served, or after a generous bound: reads that
                # wait for this lock are then counted as not served while it was held.
                reads_done.wait(20)
                served_while_held.append(served)

        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        try:
            assert await anyio.to_thread.run_sync(holding.wait, 30)

            async def reader(n: int) -> int:
                nonlocal served
                response = await api.get(f"/messenger/v1/accounts/user-{n % 4}")
                served += 1
                return response.status_code

            codes = await asyncio.gather(*(reader(n) for n in range(READERS)))
            reads_done.set()
        finally:
            reads_done.set()
            holder.join(60)
            other.dispose()
        assert served_while_held == [READERS]
        assert codes == [200] * READERS


async def test_many_concurrent_readers_and_writers_all_succeed(database_url: str,
                                                               tmp_path: Path) -> None:
    """Concurrent PUTs (writes) and GETs (reads) on one store: zero failures."""
    async with exchange(database_url, tmp_path) as setup, setup.api() as api:
        assert await _put(api, "reader-target", 9_000_000) == 202

        async def writer(w: int) -> list[int]:
            return [await _put(api, f"writer-{w}-{i}", w * 100 + i) for i in range(WRITES_EACH)]

        async def reader(_: int) -> list[int]:
            return [(await api.get("/messenger/v1/accounts/reader-target")).status_code
                    for _ in range(READS_EACH)]

        writes, reads = await asyncio.gather(
            asyncio.gather(*(writer(w) for w in range(WRITERS))),
            asyncio.gather(*(reader(r) for r in range(READERS))))
        assert [c for codes in writes for c in codes] == [202] * WRITERS * WRITES_EACH
        assert [c for codes in reads for c in codes] == [200] * READERS * READS_EACH
        states = {(await api.get(f"/messenger/v1/accounts/writer-{w}-{i}")).json()["state"]
                  for w in range(WRITERS) for i in range(WRITES_EACH)}
        assert states == {"verifying_possession"}
