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
the importing process and how long the one transaction that writes the registry (the switch)
held it, i.e. the longest a serving gateway waits for the import. Prints figures; never fails
on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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
    from numident.operator.registry import import_subscribers
    from numident.storage.database import create_database_engine

    engine = create_database_engine(url)
    started = time.perf_counter()
    report = import_subscribers(engine, path, now=datetime.now(UTC),
                                notice_source="http://127.0.0.1:8080",
                                regions=frozenset({"RU"}))
    seconds = time.perf_counter() - started
    engine.dispose()
    print(json.dumps({"seconds": seconds, "switch": report.switch_seconds, "rows": report.rows,
                      "inserted": report.inserted, "updated": report.updated,
                      "notices": report.notices}))


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
              f"{'peak RSS':>11}{'switch s':>10}{'notices':>9}")
        for store in stores:
            with database(store, work) as url:
                engine = create_database_engine(url)
                upgrade(engine, "operator")
                engine.dispose()
                for name, path in (("first", export), ("delta", delta)):
                    f = run_child(url, path)
                    print(f"{store:<11}{name:<8}{f['seconds']:>9.1f}{f['cpu']:>8.1f}"
                          f"{f['rows'] / f['seconds']:>10.0f}{f['rss_mib']:>8.0f} MiB"
                          f"{f['switch']:>10.2f}{int(f['notices']):>9}", flush=True)


if __name__ == "__main__":
    main()
