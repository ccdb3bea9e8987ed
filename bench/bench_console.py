"""Benchmark: how long the operator console's figures take over a day of identification requests.

    .venv/bin/python bench/bench_console.py                      # SQLite, 200k requests
    .venv/bin/python bench/bench_console.py --db postgresql --requests 1000000

Fills ``--requests`` answered requests spread over the last 24 hours across 5 organizers
(half answered on receipt, half deferred up to 90 s) and 1,000 pending ones, then times
``console_figures.traffic`` (requests per minute and the answer-time histogram of the last
hour, per organizer: a 24th of the rows) and ``pending_requests`` (the deadline view), each
``--repeat`` times. Prints milliseconds per call, and the same figures over the whole day
(``histogram_window`` of 24 h) to show what reading only the hour saves.
Prints figures; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scratch import scratch_database
from sqlalchemy import Engine

from numident.operator import console_figures
from numident.operator.tables import identification_requests, organizers
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

ORGANIZERS = 5


def fill(engine: Engine, count: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(organizers.insert(), [
            {"id": i + 1, "name": f"org-{i}", "notice_url": "http://127.0.0.1:9/n",
             "public_key": "{}", "active": True, "created_at": now}
            for i in range(ORGANIZERS)])
        rows = []
        for i in range(count + 1000):
            received = now - timedelta(seconds=(i * 86_399 / max(count, 1)) % 86_399)
            pending = i >= count
            rows.append({
                "request_id": str(uuid.uuid4()), "organizer_id": i % ORGANIZERS + 1,
                "phone_number": f"+7916{i:07d}", "identification_code": f"c-{i}",
                "status": "pending" if pending else "answered",
                "result": None if pending else "confirmed", "received_at": received,
                "answer_due": received + timedelta(minutes=20),
                # Half answered on receipt, half deferred (up to 90 s later).
                "answered_at": None if pending else received if i % 2 else received
                + timedelta(milliseconds=(i * 37) % 90_000)})
            if len(rows) == 20_000:
                conn.execute(identification_requests.insert(), rows)
                rows.clear()
        if rows:
            conn.execute(identification_requests.insert(), rows)


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder, \
            scratch_database(args.db, Path(folder) / "operator.db",
                             "numident_bench_console") as url:
        engine = create_database_engine(url)
        upgrade(engine, "operator")
        started = time.perf_counter()
        fill(engine, args.requests, now)
        print(f"{args.db}: {args.requests:,} answered + 1,000 pending requests over 24 h, "
              f"{ORGANIZERS} organizers (filled in {time.perf_counter() - started:.1f} s)")
        day = timedelta(hours=24)
        traffic = timed(lambda: console_figures.traffic(engine, now), args.repeat)
        whole_day = timed(lambda: console_figures.traffic(engine, now, histogram_window=day),
                          args.repeat)
        pending = timed(lambda: console_figures.pending_requests(engine, now), args.repeat)
        shown = console_figures.traffic(engine, now, histogram_window=day)
        counted = sum(sum(n for _, n in t.answer_times) for t in shown)
        assert counted == args.requests, counted
        for name, seconds in (("traffic, last hour (the page)", traffic),
                              ("traffic, histogram over 24 h", whole_day),
                              ("deadline view (pending)", pending)):
            median = statistics.median(seconds)
            print(f"  {name:34} median {median * 1000:8.1f} ms, max {max(seconds) * 1000:8.1f}"
                  f" ms")
        ratio = statistics.median(whole_day) / statistics.median(traffic)
        print(f"  the page reads the last hour {ratio:.1f}x faster than the whole day would")
        engine.dispose()


if __name__ == "__main__":
    main()
