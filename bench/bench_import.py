"""Benchmark: importing a large billing export into a fresh registry, then a delta on top.

    .venv/bin/python bench/bench_import.py                       # SQLite and PostgreSQL, 1M rows
    .venv/bin/python bench/bench_import.py --db sqlite --rows 200000 --delta 50000

A file of ``--rows`` synthetic subscribers (``+7916NNNNNNN``, unique contracts, a spread of
activation dates) is generated in a temporary folder. For each store, a fresh database is
brought to the schema and then, each in a child process of its own (so that its peak RSS is its
own, read with ``wait4``):

1. the first load: ``numident.operator.registry.import_subscribers`` of the whole file;
2. a delta: a file of ``--delta`` rows of the same numbers whose contracts changed (half ended,
   half reassigned), imported into the loaded registry.

It prints, for each: wall seconds, the child's CPU seconds, rows per second, the peak RSS of
the importing process, how long the switch took in all and its longest single transaction
(what the import itself measured), and the longest write a serving gateway waited for: while
each import runs, a prober in this process writes one registry row (a no-op update of a random
number, committed) every few milliseconds through the gateway's own engine, and the longest of
those writes is reported, with how many it made. On SQLite that is a wait for the file's write
lock, on PostgreSQL for the row's lock. Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from scratch import postgres_database

HEADER = "phone_number,contract_id,status,activated_at\n"


def write_export(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for n in range(rows):
            out.write(f"+7916{n:07d},C-{n},active,20{10 + n % 15:02d}-0{1 + n % 9}-1{n % 10}\n")


def write_delta(path: Path, rows: int, step: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            n = i * step
            if i % 2:
                out.write(f"+7916{n:07d},C-{n},terminated,20{10 + n % 15:02d}-0{1 + n % 9}-1"
                          f"{n % 10}\n")
            else:
                out.write(f"+7916{n:07d},C-{n}-new,active,2026-11-01\n")


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'operator.db'}"
        return
    yield from postgres_database("numident_bench_import")


def child(url: str, path: Path) -> None:
    """Run one import here and print its report as JSON (the parent reads RSS)."""
    from numident.operator.bootstrap import lifecycle_handlers
    from numident.operator.registry import import_subscribers
    from numident.storage.database import create_database_engine

    engine = create_database_engine(url)
    started = time.perf_counter()
    report = import_subscribers(engine, path, now=datetime.now(UTC),
                                notice_source="http://127.0.0.1:8080",
                                regions=frozenset({"RU"}), handlers=lifecycle_handlers())
    seconds = time.perf_counter() - started
    engine.dispose()
    print(json.dumps({"seconds": seconds, "switch": report.switch_seconds,
                      "hold": report.longest_hold_seconds, "rows": report.rows,
                      "inserted": report.inserted, "updated": report.updated,
                      "notices": report.notices}))


class Prober:
    """Writes one registry row at a time, as a serving gateway does, until stopped: the
    longest write is how long serving waited for the import."""

    PAUSE = 0.005

    def __init__(self, url: str, rows: int) -> None:
        self.url, self.rows = url, rows
        self.longest = 0.0
        self.writes = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        from sqlalchemy import text

        from numident.storage.database import create_database_engine, write_transaction

        engine = create_database_engine(self.url)
        pick = random.Random(7)
        touch = text("UPDATE subscribers SET updated_at = updated_at WHERE phone_number = :n")
        try:
            while not self.stop.wait(self.PAUSE):
                started = time.perf_counter()
                with write_transaction(engine) as conn:
                    conn.execute(touch, {"n": f"+7916{pick.randrange(self.rows):07d}"})
                self.longest = max(self.longest, time.perf_counter() - started)
                self.writes += 1
        finally:
            engine.dispose()

    def __enter__(self) -> Prober:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_child(url: str, path: Path) -> dict[str, float]:
    process = subprocess.Popen([sys.executable, __file__, "--child", url, str(path)],
                               stdout=subprocess.PIPE, env={**os.environ})
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the import failed (exit {process.returncode})")
    figures: dict[str, float] = json.loads(output)
    figures["rss_mib"] = usage.ru_maxrss / 1024
    figures["cpu"] = usage.ru_utime + usage.ru_stime
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--delta", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    stores = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="numident-bench-import-") as tmp:
        work = Path(tmp)
        export, delta = work / "export.csv", work / "delta.csv"
        write_export(export, args.rows)
        write_delta(delta, min(args.delta, args.rows), max(args.rows // max(args.delta, 1), 1))
        print(f"{args.rows} rows ({export.stat().st_size / 2**20:.0f} MiB), delta "
              f"{min(args.delta, args.rows)} changed contracts")
        print(f"{'store':<11}{'import':<8}{'seconds':>9}{'CPU s':>8}{'rows/s':>10}"
              f"{'peak RSS':>11}{'switch s':>10}{'hold s':>8}{'notices':>9}"
              f"{'longest serving write':>23}")
        for store in stores:
            with database(store, work) as url:
                engine = create_database_engine(url)
                upgrade(engine, "operator")
                engine.dispose()
                for name, path in (("first", export), ("delta", delta)):
                    with Prober(url, args.rows) as prober:
                        f = run_child(url, path)
                    print(f"{store:<11}{name:<8}{f['seconds']:>9.1f}{f['cpu']:>8.1f}"
                          f"{f['rows'] / f['seconds']:>10.0f}{f['rss_mib']:>8.0f} MiB"
                          f"{f['switch']:>10.2f}{f['hold']:>8.2f}{int(f['notices']):>9}"
                          f"{prober.longest:>10.2f} s of {prober.writes:>6}", flush=True)


if __name__ == "__main__":
    main()
