"""Benchmark: bytes on disk per stored row in PostgreSQL, indexes included, by the real code.

    .venv/bin/python bench/bench_storage_size.py                    # 200k subscribers
    .venv/bin/python bench/bench_storage_size.py --subscribers 1000000 --identifications 200000

A fresh PostgreSQL database at the operator schema is filled the way a gateway fills it:
``import_subscribers`` loads a synthetic billing export of ``--subscribers`` active lines
(random numbers of the 916 range, so the indexes see random inserts as a real export does);
``answer_now`` answers ``--identifications`` requests in chunks of 1000, half registered
numbers (confirmed: request, audit and usage rows) and half unknown (not_found: request and
audit rows only); ``record_event`` ends ``--events`` contracts whose numbers carry a usage
(lifecycle event, history, audit, the usage ended and one notice in the outbox). After each
step the tables are analysed and their size read with ``pg_table_size`` (heap + TOAST) and
``pg_indexes_size``; the growth divided by the rows added is the figure per row.

Prints a table per step; never fails (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import signal
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scratch import postgres_database
from sqlalchemy import Engine, text

TABLES = ("subscribers", "subscriber_history", "identification_requests", "usages", "audit",
          "lifecycle_events", "outbox")


def sizes(engine: Engine) -> dict[str, tuple[int, int, int]]:
    """Per table: rows, table bytes (heap, TOAST, maps), index bytes."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        found = {}
        for table in TABLES:
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")  # noqa: S608 - constant
                                ).scalar_one()
            heap, index = conn.execute(text(
                "SELECT pg_table_size(:t), pg_indexes_size(:t)"), {"t": table}).one()
            found[table] = (int(rows), int(heap), int(index))
    return found


def show(step: str, seconds: float, before: dict[str, tuple[int, int, int]],
         after: dict[str, tuple[int, int, int]]) -> None:
    print(f"{step} ({seconds:.1f} s)")
    for table in TABLES:
        rows = after[table][0] - before[table][0]
        if rows <= 0:
            continue
        heap = (after[table][1] - before[table][1]) / rows
        index = (after[table][2] - before[table][2]) / rows
        print(f"  {table:<24} +{rows:>9} rows  {heap:7.0f} B/row table  {index:7.0f} B/row "
              f"indexes  {heap + index:7.0f} B/row total", flush=True)


def export(path: Path, numbers: list[int], activated: datetime) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phone_number", "contract_id", "status", "activated_at"])
        for n in numbers:
            writer.writerow([f"+7{n}", f"C-{n}", "active", activated.isoformat()])


def main(args: Any) -> None:
    from numident.client.keys import generate_key
    from numident.core.notices import NoticeType
    from numident.operator import organizers
    from numident.operator.bootstrap import lifecycle_handlers
    from numident.operator.events import record_event
    from numident.operator.identification import Item, Organizer, answer_now
    from numident.operator.registry import import_subscribers
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    rng = random.Random(7)
    numbers = rng.sample(range(9_160_000_000, 9_170_000_000), args.subscribers)
    registered = numbers[:]
    now = datetime.now(UTC)
    with contextmanager(postgres_database)("numident_bench_size") as url, \
            tempfile.TemporaryDirectory() as tmp:
        engine = create_database_engine(url)
        upgrade(engine, "operator")
        print(f"PostgreSQL {url.rsplit('/', 1)[1]}: subscribers={args.subscribers} "
              f"identifications={args.identifications} events={args.events}")
        start = sizes(engine)

        started = time.perf_counter()
        path = Path(tmp) / "export.csv"
        export(path, numbers, datetime(2021, 3, 1, tzinfo=UTC))
        import_subscribers(engine, path, now=now, notice_source="http://127.0.0.1:9",
                           handlers=lifecycle_handlers())
        imported = sizes(engine)
        show("import_subscribers", time.perf_counter() - started, start, imported)

        record = organizers.add_organizer(engine, "sizes", "http://127.0.0.1:9/notices",
                                          json.dumps(generate_key().public_jwk()), now)
        organizer = Organizer(record.id, record.name)
        started = time.perf_counter()
        confirmed: list[str] = []
        for chunk in range(0, args.identifications, 1000):
            items = []
            for i in range(chunk, min(args.identifications, chunk + 1000)):
                number = f"+7{registered[i // 2]}" if i % 2 == 0 \
                    else f"+7{rng.randrange(9_030_000_000, 9_040_000_000)}"
                items.append(Item(number, f"acct-{i:012d}"))
            confirmed += [i.phone_number for i in items[::2]]
            answer_now(engine, organizer, items, now + timedelta(microseconds=chunk))
        identified = sizes(engine)
        show("answer_now (half confirmed)", time.perf_counter() - started, imported,
             identified)

        started = time.perf_counter()
        for number in confirmed[:args.events]:
            record_event(engine, NoticeType.CONTRACT_TERMINATED, number, occurred_at=now,
                         recorded_at=now, source="bench", notice_source="http://127.0.0.1:9",
                         handlers=lifecycle_handlers())
        show("record_event contract_terminated (one notice each)",
             time.perf_counter() - started, identified, sizes(engine))
        with engine.connect() as conn:
            total = conn.execute(text("SELECT pg_database_size(current_database())")
                                 ).scalar_one()
        print(f"database size {total / 2**20:.0f} MiB")
        engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=200_000)
    parser.add_argument("--identifications", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10_000)
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # drop the database on kill
    main(arguments)
