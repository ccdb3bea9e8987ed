"""Benchmark: batch identification of N numbers against an M-subscriber registry.

    .venv/bin/python bench/bench_batch.py                              # SQLite, 1M vs 10M
    .venv/bin/python bench/bench_batch.py --db postgresql              # a fresh PostgreSQL db
    .venv/bin/python bench/bench_batch.py --numbers 100000 --subscribers 1000000
    .venv/bin/python bench/bench_batch.py --profile /tmp/batch.prof    # cProfile numident's path

Setup (timed, reported apart): the schema by ``numident.storage.migrate.upgrade(engine,
"operator")``, then M active subscribers +7916NNNNNNN: on PostgreSQL with psycopg ``COPY``, on
SQLite with ``executemany`` in chunks of 200k rows inside one transaction, with
``PRAGMA synchronous=OFF`` (and a 1 GB page cache) on that setup connection only; every
measured connection uses numident's own settings (WAL, synchronous=NORMAL, BEGIN IMMEDIATE).

Measured, in chunks of ``--chunk`` (1000: the batch endpoint's unit of work), half of each chunk
numbers drawn at random from the registry (answer ``confirmed``), half numbers the registry does
not hold (+7903..., ``not_found``), every identification code unique:

* numident: ``numident.operator.identification.answer_now(engine, organizer, items, now)``,
  one call (one transaction) per chunk.
* driver: the same statements written by hand with the database driver (sqlite3 / psycopg
  cursor), one transaction per chunk, writing the same rows as ``answer_now``:
  ``SELECT phone_number, status FROM subscribers WHERE phone_number IN (...)`` (``= ANY(%s)``
  on PostgreSQL), 1000 ``identification_requests`` rows, the ``request_received`` and
  ``answered`` audit rows, then for the confirmed ones the look-up of active usages of the same
  codes (rule 6: a code that moved to another number is withdrawn), the ``usages`` upsert and
  the ``usage_recorded`` audit rows.

By default the two paths alternate chunk by chunk (``--order interleaved``, which one goes first
alternates too), each with its own random numbers, so both see the same table sizes and cache
state; ``--order sequential`` runs all numident chunks, then all driver chunks.
Item construction is outside the timed region for both. Prints figures; never fails on time.
"""

# ruff: noqa: S608 - the SQL texts are assembled from placeholders and fixed names only
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scratch import postgres_database
from sqlalchemy import text

from numident.client.keys import generate_key
from numident.core.identification import ANSWER_DEADLINE, Result
from numident.operator import organizers
from numident.operator.identification import Item, Organizer, answer_now
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

HIT, MISS = "+7916", "+7903"  # registry numbers / numbers no subscriber holds
ORGANIZER = "bench"
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime in SQLite


# --- setup ------------------------------------------------------------------------------------

@contextmanager
def database(kind: str, workdir: str | None) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="numident-bench-batch-", dir=workdir) as d:
            yield f"sqlite:///{Path(d) / 'operator.db'}"
        return
    yield from postgres_database("numident_bench_batch")


def psycopg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fill_sqlite(path: str, m: int, now: datetime) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=OFF")  # setup only: this connection, this phase
    connection.execute("PRAGMA cache_size=-1000000")
    updated = now.replace(tzinfo=None).strftime(SQLITE_TIME)
    activated = "2021-03-01 00:00:00.000000"
    connection.execute("BEGIN")
    for start in range(0, m, 200_000):
        connection.executemany(
            "INSERT INTO subscribers (phone_number, contract_id, status, activated_at, "
            "updated_at) VALUES (?, ?, 'active', ?, ?)",
            ((f"{HIT}{i:07d}", f"C-{i}", activated, updated)
             for i in range(start, min(m, start + 200_000))))
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()


def fill_postgresql(url: str, m: int, now: datetime) -> None:
    import psycopg

    updated = now.isoformat()
    with psycopg.connect(psycopg_conninfo(url)) as connection:
        with connection.cursor() as cursor, cursor.copy(
                "COPY subscribers (phone_number, contract_id, status, activated_at, updated_at)"
                " FROM STDIN") as copy:
            for start in range(0, m, 200_000):
                copy.write("".join(
                    f"{HIT}{i:07d}\tC-{i}\tactive\t2021-03-01 00:00:00+00\t{updated}\n"
                    for i in range(start, min(m, start + 200_000))))
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE subscribers")


# --- the two paths ----------------------------------------------------------------------------

def chunk_numbers(rng: np.random.Generator, m: int, size: int) -> list[str]:
    """``size`` numbers: half from the registry, half not in it, alternating."""
    hits = rng.integers(0, m, size - size // 2)
    misses = rng.integers(0, 10_000_000, size // 2)
    numbers: list[str] = []
    for k, i in enumerate(hits.tolist()):
        numbers.append(f"{HIT}{i:07d}")
        if k < len(misses):
            numbers.append(f"{MISS}{int(misses[k]):07d}")
    return numbers


class DriverPath:
    """answer_now's statements written directly with the driver, one transaction per chunk."""

    def __init__(self, kind: str, url: str, organizer: Organizer) -> None:
        self.kind = kind
        self.organizer = organizer
        if kind == "sqlite":
            self.connection: Any = sqlite3.connect(url.removeprefix("sqlite:///"),
                                                   isolation_level=None,
                                                   check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                           "busy_timeout=30000"):  # numident's own settings
                self.connection.execute(f"PRAGMA {pragma}")
            self.mark = "?"
        else:
            import psycopg

            self.connection = psycopg.connect(psycopg_conninfo(url))
            self.mark = "%s"
        p = self.mark
        self.insert_request = (
            "INSERT INTO identification_requests (request_id, organizer_id, phone_number, "
            "identification_code, status, result, received_at, answer_due, answered_at) "
            f"VALUES ({p}, {p}, {p}, {p}, 'answered', {p}, {p}, {p}, {p})")
        self.insert_audit = (
            "INSERT INTO audit (at, actor, action, phone_number, identification_code, "
            f"request_id, detail) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})")
        self.upsert_usage = (
            "INSERT INTO usages (organizer_id, identification_code, phone_number, status, "
            f"since, last_confirmed_at, ended_at, end_reason) VALUES ({p}, {p}, {p}, 'active', "
            f"{p}, {p}, NULL, NULL) ON CONFLICT (organizer_id, identification_code, "
            "phone_number) DO UPDATE SET status = excluded.status, "
            "last_confirmed_at = excluded.last_confirmed_at, ended_at = excluded.ended_at, "
            "end_reason = excluded.end_reason, since = CASE WHEN usages.status = 'active' "
            "THEN usages.since ELSE excluded.since END")

    def _time(self, value: datetime) -> Any:
        return value.replace(tzinfo=None).strftime(SQLITE_TIME) if self.kind == "sqlite" \
            else value

    def _json(self, value: Any) -> Any:
        if self.kind == "sqlite":
            return json.dumps(value)
        from psycopg.types.json import Json

        return Json(value)

    def _in(self, column: str, values: list[str]) -> tuple[str, Any]:
        if self.kind == "sqlite":
            return f"{column} IN ({', '.join('?' * len(values))})", values
        return f"{column} = ANY(%s)", [values]

    def answer(self, items: list[Item], now: datetime) -> int:
        """Answer ``items`` in one transaction; the number of confirmed answers."""
        organizer, p = self.organizer, self.mark
        conn = self.connection
        cur = conn.cursor()
        if self.kind == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        try:
            numbers = list({i.phone_number for i in items})
            where, params = self._in("phone_number", numbers)
            cur.execute(f"SELECT phone_number, status FROM subscribers WHERE {where}", params)
            status = dict(cur.fetchall())
            at, due = self._time(now), self._time(now + ANSWER_DEADLINE)
            requests: list[tuple[Any, ...]] = []
            entries: list[tuple[Any, ...]] = []
            confirmed: list[tuple[Item, str]] = []
            answered_json = {r: self._json({"result": r.value}) for r in Result}
            null = self._json(None)  # numident's JSON column stores None as JSON null
            for item in items:
                request_id = str(uuid.uuid4())
                ok = status.get(item.phone_number) in ("active", "suspended")
                result = Result.CONFIRMED if ok else Result.NOT_FOUND
                requests.append((request_id, organizer.id, item.phone_number,
                                 item.identification_code, result.value, at, due, at))
                entries.append((at, organizer.name, "request_received", item.phone_number,
                                item.identification_code, request_id, null))
                entries.append((at, organizer.name, "answered", item.phone_number,
                                item.identification_code if ok else None, request_id,
                                answered_json[result]))
                if ok:
                    confirmed.append((item, request_id))
            cur.executemany(self.insert_request, requests)
            cur.executemany(self.insert_audit, entries)
            if confirmed:
                codes = {item.identification_code: item.phone_number for item, _ in confirmed}
                where, params = self._in("identification_code", list(codes))
                cur.execute("SELECT id, phone_number, identification_code FROM usages WHERE "
                            f"organizer_id = {p} AND status = 'active' AND {where}",
                            [organizer.id, *params])
                stale = [(i, n, c) for i, n, c in cur.fetchall() if codes[c] != n]
                if stale:
                    where, params = self._in("id", [s[0] for s in stale])
                    cur.execute(f"UPDATE usages SET status = 'withdrawn', ended_at = {p}, "
                                f"end_reason = 'number_changed' WHERE {where}", [at, *params])
                cur.executemany(self.upsert_usage, [
                    (organizer.id, item.identification_code, item.phone_number, at, at)
                    for item, _ in confirmed])
                cur.executemany(self.insert_audit, [
                    *((at, organizer.name, "usage_recorded", item.phone_number,
                       item.identification_code, request_id, null)
                      for item, request_id in confirmed),
                    *((at, organizer.name, "usage_withdrawn", n, c, None,
                       self._json({"reason": "number_changed"})) for _, n, c in stale)])
        except BaseException:
            conn.rollback() if self.kind == "postgresql" else cur.execute("ROLLBACK")
            raise
        if self.kind == "sqlite":
            cur.execute("COMMIT")
        else:
            conn.commit()
        cur.close()
        return len(confirmed)

    def close(self) -> None:
        self.connection.close()


# --- the run ----------------------------------------------------------------------------------

class Runner:
    """One measured path: its chunk timer, its random numbers, its counts."""

    def __init__(self, name: str, seed: int, run: Callable[[list[Item], datetime], int]) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.run = run
        self.seconds: list[float] = []
        self.numbers = 0
        self.confirmed = 0

    def step(self, chunk: int, m: int, size: int) -> None:
        numbers = chunk_numbers(self.rng, m, size)
        items = [Item(n, f"{self.name[0]}{chunk}-{k}") for k, n in enumerate(numbers)]
        started = time.perf_counter()
        self.confirmed += self.run(items, datetime.now(UTC))
        self.seconds.append(time.perf_counter() - started)
        self.numbers += len(items)

    @property
    def rate(self) -> float:
        return self.numbers / sum(self.seconds) if self.seconds else 0.0

    def summary(self) -> str:
        ms = sorted(s * 1000 for s in self.seconds)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return (f"  {self.name:<9} {self.numbers:>9} numbers in {sum(self.seconds):8.1f} s = "
                f"{self.rate:9.0f} numbers/s   per chunk: median {statistics.median(ms):6.1f} "
                f"ms, p99 {p99:6.1f} ms   confirmed {self.confirmed}")


def main(args: Any) -> None:
    if args.subscribers > 10_000_000:
        raise SystemExit("--subscribers: at most 10,000,000 (numbers +7916NNNNNNN)")
    with database(args.db, args.workdir) as url:
        engine = create_database_engine(url)
        upgrade(engine, "operator")
        now = datetime.now(UTC)
        started = time.perf_counter()
        if args.db == "sqlite":
            fill_sqlite(url.removeprefix("sqlite:///"), args.subscribers, now)
        else:
            fill_postgresql(url, args.subscribers, now)
        fill_seconds = time.perf_counter() - started
        record = organizers.add_organizer(engine, ORGANIZER, "http://127.0.0.1:9/notices",
                                          json.dumps(generate_key().public_jwk()), now)
        organizer = Organizer(record.id, record.name)
        setup = ("psycopg COPY" if args.db == "postgresql" else
                 "executemany, one transaction, PRAGMA synchronous=OFF for setup only")
        print(f"db={args.db} subscribers={args.subscribers:,} numbers={args.numbers:,} "
              f"chunk={args.chunk} order={args.order}  (1 process; the database on the other "
              f"core: {os.cpu_count()} cores)")
        print(f"  registry filled in {fill_seconds:.1f} s "
              f"({args.subscribers / fill_seconds:,.0f} rows/s, {setup}, then ANALYZE)",
              flush=True)

        profiler = cProfile.Profile() if args.profile else None

        def numident_run(items: list[Item], at: datetime) -> int:
            if profiler:
                profiler.enable()
            views = answer_now(engine, organizer, items, at)
            if profiler:
                profiler.disable()
            return sum(v.result is Result.CONFIRMED for v in views)

        driver = DriverPath(args.db, url, organizer)
        paths = [Runner("numident", args.seed, numident_run),
                 Runner("driver", args.seed + 1, driver.answer)]
        if args.only:
            paths = [p for p in paths if p.name == args.only]
        chunks = -(-args.numbers // args.chunk)
        sizes = [min(args.chunk, args.numbers - c * args.chunk) for c in range(chunks)]
        analyze = analyzer(engine, args)
        analyze(-1)
        measured = time.perf_counter()
        if args.order == "interleaved":
            for c, size in enumerate(sizes):
                for path in (paths if c % 2 == 0 else paths[::-1]):
                    path.step(c, args.subscribers, size)
                analyze(c)
                progress(c, chunks, paths, measured)
        else:
            for path in paths:
                for c, size in enumerate(sizes):
                    path.step(c, args.subscribers, size)
                    analyze(c)
                    progress(c, chunks, [path], measured)
        driver.close()
        if args.verify:
            verify(engine)
        engine.dispose()
        print("results:")
        for path in paths:
            print(path.summary())
        if len(paths) == 2:
            print(f"ratio numident/driver: {paths[0].rate / paths[1].rate:.2f} "
                  f"(numbers per second)")
        if profiler is not None:
            profiler.dump_stats(args.profile)
            print(f"cProfile of numident's path (slows it down; its figures above are not "
                  f"representative): {args.profile}")
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats("numident", 25)


def analyzer(engine: Any, args: Any) -> Callable[[int], None]:
    """On PostgreSQL, ANALYZE the written tables every ``--analyze-every`` chunks, untimed.

    This stands in for autovacuum's auto-analyze (the local server runs with autovacuum off):
    without statistics the planner keeps sequential-scan plans on ``usages`` as it grows, and
    both paths slow down quadratically, which says nothing about either.
    """
    every = args.analyze_every if args.db == "postgresql" else 0

    def analyze(chunk: int) -> None:
        if every and (chunk + 1) % every == 0:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE usages, identification_requests, audit")
    return analyze


def verify(engine: Any) -> None:
    """The rows each path wrote, side by side (codes start with n / d)."""
    queries = {
        "requests": "SELECT substr(identification_code, 1, 1), status, result, count(*) "
                    "FROM identification_requests GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "audit": "SELECT substr(r.identification_code, 1, 1), a.action, a.actor, count(*), "
                 "count(a.identification_code), count(a.phone_number), count(a.detail), "
                 "min(CAST(a.detail AS TEXT)), max(CAST(a.detail AS TEXT)), "
                 "sum(CASE WHEN a.at = r.received_at THEN 1 ELSE 0 END) "
                 "FROM audit a JOIN identification_requests r ON a.request_id = r.request_id "
                 "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "usages": "SELECT substr(identification_code, 1, 1), status, count(*), "
                  "sum(CASE WHEN since = last_confirmed_at THEN 1 ELSE 0 END), "
                  "count(ended_at), count(end_reason) FROM usages GROUP BY 1, 2 ORDER BY 1, 2",
        "sample": "SELECT * FROM identification_requests WHERE request_id IN ("
                  "SELECT min(request_id) FROM identification_requests "
                  "GROUP BY substr(identification_code, 1, 1), result)",
    }
    with engine.connect() as conn:
        for name, sql in queries.items():
            print(f"verify {name}:")
            for row in conn.execute(text(sql)):
                print("   ", tuple(row))


def progress(c: int, chunks: int, paths: list[Runner], started: float) -> None:
    if (c + 1) % max(1, chunks // 10) == 0 or c + 1 == chunks:
        rates = "  ".join(f"{p.name} {p.rate:,.0f}/s" for p in paths)
        print(f"  ... chunk {c + 1}/{chunks}  {rates}  ({time.perf_counter() - started:.0f} s)",
              flush=True)


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the benchmark's database is dropped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1000, help="numbers per transaction")
    parser.add_argument("--order", choices=["interleaved", "sequential"], default="interleaved")
    parser.add_argument("--only", choices=["numident", "driver"], help="measure one path")
    parser.add_argument("--seed", type=int, default=1279)
    parser.add_argument("--workdir", help="where the SQLite file goes (default: temp dir)")
    parser.add_argument("--analyze-every", type=int, default=50,
                        help="PostgreSQL: ANALYZE written tables every N chunks (0: never)")
    parser.add_argument("--verify", action="store_true",
                        help="print the rows each path wrote, side by side")
    parser.add_argument("--profile", metavar="FILE", help="cProfile numident's path to FILE")
    main(parser.parse_args())
