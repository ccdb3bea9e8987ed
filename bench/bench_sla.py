"""Benchmark: the SLA report over a day of national traffic in the audit trail.

    .venv/bin/python bench/bench_sla.py                     # SQLite and PostgreSQL, 1M requests
    .venv/bin/python bench/bench_sla.py --db postgresql --requests 3000000 --organizers 20

A fresh database at the newest schema gets, for the day measured and for each of the days
before and after (so that the report's range scans skip data): ``--requests`` identification
requests spread over the day and over ``--organizers`` organizers, each a ``request_received``
and an ``answered`` entry (answer times drawn from a fixed seed: most under a second, a tail up
to 25 minutes, 0.5 % expired instead), one ``limit_exceeded`` entry per organizer and minute,
and ``--notices`` notices (``usage_invalidated``) with their ``notice_delivered`` (98 %) or
``notice_dead`` entries. PostgreSQL is loaded with COPY, SQLite with executemany; both are
ANALYZEd. Then ``numident.operator.sla.sla_report`` for the middle day runs ``--runs`` times.

It prints the rows loaded, the load time, the report's best and median time, audit rows per
second of report, and checks the report's totals against what was written (requests, answered
in time, late, notices, dead letters). Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from scratch import scratch_database

DAY = date(2026, 11, 2)
ROW = tuple[datetime, str, str, str | None, str | None]
"""at, actor, action, request_id, detail (JSON text)."""


def day_rows(day: date, requests: int, organizers: int, notices: int,
             seed: int) -> Iterator[ROW]:
    rng = random.Random(seed)
    start = datetime.combine(day, datetime.min.time(), UTC)
    names = [f"org-{n:02d}" for n in range(organizers)]
    answered = json.dumps({"result": "confirmed"})
    for n in range(requests):
        received = start + timedelta(seconds=86_400 * n / requests)
        organizer = names[n % organizers]
        request_id = f"{day:%m%d}-{n:08d}"
        yield received, organizer, "request_received", request_id, None
        draw = rng.random()
        if draw < 0.005:
            yield (received + timedelta(minutes=20), organizer, "request_expired", request_id,
                   None)
            continue
        took = rng.expovariate(4.0) if draw < 0.99 else rng.uniform(60, 1500)
        yield received + timedelta(seconds=took), organizer, "answered", request_id, answered
    for minute in range(0, 1440):
        for organizer in names:
            yield (start + timedelta(minutes=minute), organizer, "limit_exceeded", None,
                   json.dumps({"limit": "rate_limit", "value": 500, "items": 1,
                               "refused": 7}))
    for n in range(notices):
        written = start + timedelta(seconds=86_400 * n / notices)
        organizer = names[n % organizers]
        notice_id = str(uuid.UUID(int=rng.getrandbits(128)))
        yield written, "cli", "usage_invalidated", None, json.dumps(
            {"organizer": organizer, "noticeId": notice_id, "type": "contract_terminated"})
        if rng.random() < 0.98:
            yield (written + timedelta(seconds=rng.expovariate(0.5)), "dispatcher",
                   "notice_delivered", None,
                   json.dumps({"organizer": organizer, "noticeId": notice_id, "attempts": 1}))
        else:
            yield (written + timedelta(hours=24), "dispatcher", "notice_dead", None,
                   json.dumps({"organizer": organizer, "noticeId": notice_id, "attempts": 30}))


def load(url: str, rows: Iterator[ROW]) -> int:
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    engine = create_database_engine(url)
    upgrade(engine, "operator")
    count = 0
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cursor, cursor.copy(
                    "COPY audit (at, actor, action, request_id, detail) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            insert = "INSERT INTO audit (at, actor, action, request_id, detail) VALUES (?,?,?,?,?)"
            chunk: list[tuple[Any, ...]] = []
            for at, *rest in rows:
                chunk.append((at.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest))  # as UtcDateTime
                if len(chunk) == 50_000:
                    raw.executemany(insert, chunk)
                    count += len(chunk)
                    chunk = []
            raw.executemany(insert, chunk)
            count += len(chunk)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    engine.dispose()
    return count


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> None:
    from numident.operator.sla import sla_report
    from numident.storage.database import create_database_engine

    with scratch_database(kind, workdir / "operator.db", "numident_bench_sla") as url:
        started = time.perf_counter()
        rows = sum(load(url, day_rows(DAY + timedelta(days=offset), args.requests,
                                      args.organizers, args.notices, seed=offset + 1))
                   for offset in (-1, 0, 1))
        loaded = time.perf_counter() - started
        engine = create_database_engine(url)
        now = datetime.combine(DAY + timedelta(days=3), datetime.min.time(), UTC)
        times = []
        report = []
        for _ in range(args.runs):
            began = time.perf_counter()
            report = sla_report(engine, DAY, DAY, now=now)
            times.append(time.perf_counter() - began)
        engine.dispose()
    day_audit_rows = rows / 3
    best, median = min(times), statistics.median(times)
    print(f"{kind}: {rows:,} audit rows loaded in {loaded:.1f} s "
          f"({day_audit_rows:,.0f} for the day reported)")
    print(f"  report of one day, {len(report)} organizers: best {best:.2f} s, "
          f"median {median:.2f} s over {args.runs} runs; "
          f"{day_audit_rows / best:,.0f} audit rows/s")
    total = {k: sum(getattr(d, k) for d in report)
             for k in ("requests", "answered_in_time", "late", "refused", "notices",
                       "delivered_in_time", "dead_letters")}
    print(f"  totals: {total}")
    print(f"  requests as written: {'ok' if total['requests'] == args.requests else 'MISMATCH'}"
          f"; notices as written: {'ok' if total['notices'] == args.notices else 'MISMATCH'}"
          f"; refused as written: "
          f"{'ok' if total['refused'] == 7 * 1440 * args.organizers else 'MISMATCH'}")
    worst = max(report, key=lambda d: d.answer_p99 or 0.0)
    print(f"  e.g. {worst.organizer}: p50 {worst.answer_p50} s, p95 {worst.answer_p95} s, "
          f"p99 {worst.answer_p99} s, delivery p99 {worst.delivery_p99} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=1_000_000,
                        help="identification requests per day")
    parser.add_argument("--organizers", type=int, default=10)
    parser.add_argument("--notices", type=int, default=20_000, help="notices per day")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            measure(kind, args, Path(workdir))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
