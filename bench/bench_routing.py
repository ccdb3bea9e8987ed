"""Benchmark: routing at national scale (the real numbering plan, millions of ported numbers).

    .venv/bin/python bench/bench_routing.py                                  # SQLite, 20M ports
    .venv/bin/python bench/bench_routing.py --db postgresql                  # a fresh PG database
    .venv/bin/python bench/bench_routing.py --ports 1000000 --bulk 1000000   # a quick run
    .venv/bin/python bench/bench_routing.py --csv /tmp/ports20m.csv          # reuse/keep the CSV

What runs:

* the numbering plan ``--plan`` (default ``../shared/data/DEF-9xx.csv`` beside the checkout,
  read in place, never
  copied) is loaded with ``RoutingService.import_plan`` into a temporary SQLite file or a
  PostgreSQL database created for the run (``CREATE DATABASE numident_bench_routing_<hex>``,
  dropped at the end);
* ``--ports`` distinct ten-digit numbers are drawn uniformly from the union of the plan's ranges
  (numpy), each given a random ИНН of the plan and a random port time, and written as a plain
  ``number,operator,ported_at`` CSV (``+7XXXXXXXXXX,INN,YYYY-MM-DDTHH:MM:SSZ``) with a vectorised
  byte-matrix writer; ``--csv PATH`` keeps the file there and reuses it when it already exists
  with the same row count;
* ``import_ports`` is timed end to end; the parse (``read_ports``) and the database load
  (``SqlRoutingStore.load_ports``) are timed separately by wrapping them, and the importing
  process's peak RSS is reported;
* a FRESH child process (``--child``) imports numident, builds the index with ``router()`` on a
  new ``RoutingService`` (timed), routes ``--bulk`` random numbers with ``route_bulk`` (half
  ported numbers, half plan numbers; best of ``--repeat``), makes ``--single`` ``route()`` calls
  (and as many ``route_national`` calls, the index part alone), and reports its RSS: before the
  build (after imports), after the build, and its peak.

Goals: bulk routing >= 1,000,000 numbers/s; RSS with the index built < 1 GiB.
Prints figures and ratios to the goals; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scratch import postgres_database

# shared/ lies beside the checkout, as in CI.
PLAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "DEF-9xx.csv"
BULK_GOAL = 1_000_000
RSS_GOAL = 1 << 30
MIB = 1 << 20


def peak_rss() -> int:
    """Peak resident set size of this process, bytes.

    ``VmHWM`` of /proc/self/status, which starts afresh at exec; ``ru_maxrss`` does not (Linux
    keeps it across fork + exec, so a child would report its parent's peak).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


# --- the synthetic portability file -----------------------------------------------------------

def plan_ranges(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(starts, ends, ИННs) of the plan, parsed by numident's own reader."""
    from numident.routing.plan import read_plan

    plan = read_plan(path)
    starts = np.array([r.start for r in plan.ranges], dtype=np.int64)
    ends = np.array([r.end for r in plan.ranges], dtype=np.int64)
    return starts, ends, sorted(plan.names)


def draw_numbers(starts: np.ndarray, ends: np.ndarray, count: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct numbers, uniform over the union of the ranges, in random order."""
    sizes = ends - starts + 1
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    total = int(offsets[-1])
    if count > total:
        raise SystemExit(f"--ports {count} exceeds the plan's capacity {total}")
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < count:
        extra = rng.integers(0, total, size=int((count - len(chosen)) * 1.05) + 16)
        # sort + neighbour mask: np.unique (hash-based in numpy 2.4) is ~10x slower here
        chosen = np.sort(np.concatenate([chosen, extra]))
        chosen = chosen[np.concatenate([[True], chosen[1:] != chosen[:-1]])]
    chosen = rng.permutation(chosen)[:count]
    slot = np.searchsorted(offsets, chosen, side="right") - 1
    return starts[slot] + (chosen - offsets[slot])


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers, zero-padded to ``width``: uint8 [n, width]."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64, copy=True)
    for column in range(width - 1, -1, -1):
        out[:, column] = rest % 10 + 48
        rest //= 10
    return out


def write_ports_csv(path: Path, numbers: np.ndarray, inns: list[str],
                    rng: np.random.Generator, chunk: int = 1_000_000) -> None:
    """``+7NNNNNNNNNN,INN,YYYY-MM-DDTHH:MM:SSZ`` rows built as byte matrices, chunk by chunk.

    Each row is laid out at a fixed width with the ИНН right-padded to 12 bytes; a mask drops the
    padding so that 10-digit ИНН stay 10 digits in the file.
    """
    inn_width = max(len(i) for i in inns)
    inn_bytes = np.zeros((len(inns), inn_width), dtype=np.uint8)
    inn_mask = np.zeros((len(inns), inn_width), dtype=bool)
    for i, inn in enumerate(inns):
        inn_bytes[i, :len(inn)] = np.frombuffer(inn.encode(), dtype=np.uint8)
        inn_mask[i, :len(inn)] = True
    first = int(np.datetime64("2014-01-01T00:00:00", "s").astype(np.int64))
    last = int(np.datetime64("2025-06-01T00:00:00", "s").astype(np.int64))
    with path.open("wb") as out:
        out.write(b"number,operator,ported_at\n")
        for start in range(0, len(numbers), chunk):
            part = numbers[start:start + chunk]
            n = len(part)
            ops = rng.integers(0, len(inns), size=n)
            times = rng.integers(first, last, size=n).astype("datetime64[s]")
            stamp = np.frombuffer(np.datetime_as_string(times, unit="s").astype("S19"),
                                  dtype=np.uint8).reshape(n, 19)
            row = np.concatenate([
                np.full((n, 2), [ord("+"), ord("7")], dtype=np.uint8), _digits(part, 10),
                np.full((n, 1), ord(","), dtype=np.uint8), inn_bytes[ops],
                np.full((n, 1), ord(","), dtype=np.uint8), stamp,
                np.full((n, 2), [ord("Z"), ord("\n")], dtype=np.uint8)], axis=1)
            keep = np.ones(row.shape, dtype=bool)
            keep[:, 13:13 + inn_width] = inn_mask[ops]
            out.write(row[keep].tobytes())


def ensure_csv(path: Path, plan: Path, count: int, seed: int) -> float:
    """Write the CSV unless a file with ``count`` rows is already there; seconds spent."""
    if path.exists():
        with path.open("rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 24), b""))
        if lines == count + 1:
            print(f"reusing {path} ({count:,} rows, {path.stat().st_size / MIB:,.0f} MiB)")
            return 0.0
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    starts, ends, inns = plan_ranges(plan)
    numbers = draw_numbers(starts, ends, count, rng)
    drawn = time.perf_counter() - started
    write_ports_csv(path, numbers, inns, rng)
    seconds = time.perf_counter() - started
    print(f"generated {count:,} ported numbers over {len(inns)} operators: draw {drawn:.1f} s, "
          f"total {seconds:.1f} s, {path.stat().st_size / MIB:,.0f} MiB ({path})")
    return seconds


# --- databases --------------------------------------------------------------------------------

@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'messenger.db'}"
        return
    yield from postgres_database("numident_bench_routing")
    print("scratch PostgreSQL database dropped")


def database_size(url: str) -> int | None:
    from sqlalchemy import create_engine, text

    if url.startswith("sqlite:///"):
        base = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in base.parent.glob(base.name + "*"))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())"))
                       .scalar_one())
    finally:
        engine.dispose()


# --- the import (parent process) --------------------------------------------------------------

def run_import(url: str, plan: Path, ports: Path) -> dict[str, float]:
    import numident.routing.service as service_module
    from numident.routing.service import RoutingService
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    engine = create_database_engine(url)
    upgrade(engine, "messenger")
    routing = RoutingService(engine)
    report = routing.import_plan(plan)
    print(f"plan: {report}")

    timings: dict[str, float] = {}
    original_read, original_load = service_module.read_ports, routing.store.load_ports

    def timed_read(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_read(*args, **kwargs)
        finally:
            timings["parse"] = time.perf_counter() - started
            timings["parse_peak_rss"] = peak_rss()

    def timed_load(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original_load(*args, **kwargs)
        finally:
            timings["load"] = time.perf_counter() - started

    service_module.read_ports = timed_read  # type: ignore[assignment]
    routing.store.load_ports = timed_load  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        ports_report = routing.import_ports(ports, kind="full")
        timings["total"] = time.perf_counter() - started
    finally:
        service_module.read_ports = original_read
    timings["rows"] = ports_report.rows
    timings["peak_rss"] = peak_rss()
    print(f"ports: {ports_report}")
    engine.dispose()
    return timings


# --- the index and routing (fresh child process) ----------------------------------------------

def child(url: str, bulk: int, single: int, repeat: int, seed: int) -> None:
    """Only imports, builds the index and routes; prints one JSON line."""
    from numident.errors import InvalidInput
    from numident.routing.service import RoutingService
    from numident.storage.database import create_database_engine

    figures: dict[str, Any] = {"rss_before": rss()}
    engine = create_database_engine(url)
    routing = RoutingService(engine)
    started = time.perf_counter()
    index = routing.router()
    figures["build_seconds"] = time.perf_counter() - started
    figures["rss_after_build"] = rss()
    figures["peak_after_build"] = peak_rss()
    figures["index_nbytes"] = index.nbytes
    figures["ported"] = len(index.ported)
    figures["ranges"] = len(index.starts)

    rng = np.random.default_rng(seed)
    half = bulk // 2
    ported = index.ported[rng.integers(0, len(index.ported), size=half)] \
        if len(index.ported) else np.empty(0, dtype=np.int64)
    sizes = index.ends - index.starts + 1
    slot = rng.choice(len(sizes), size=bulk - len(ported), p=sizes / sizes.sum())
    in_plan = index.starts[slot] + (rng.random(len(slot)) * sizes[slot]).astype(np.int64)
    numbers = rng.permutation(np.concatenate([ported, in_plan])).astype(np.int64)
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        operators, _regions, sources = index.route_bulk(numbers)
        runs.append(time.perf_counter() - started)
    # Diagnostic for the proposed fix: the same queries sorted first (then put back in order).
    sorted_runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        order = np.argsort(numbers, kind="stable")
        result = index.route_bulk(numbers[order])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        _same = [part[back] for part in result]
        sorted_runs.append(time.perf_counter() - started)
    figures["bulk_sorted_runs"] = sorted_runs
    figures["bulk_numbers"] = len(numbers)
    figures["bulk_runs"] = runs
    figures["bulk_unrouted"] = int((operators < 0).sum())
    figures["bulk_ported_share"] = float((sources == 2).mean())

    sample = numbers[:single]
    texts = [f"+7{n}" for n in sample.tolist()]
    routing.route("+79160000000")
    refused = 0
    started = time.perf_counter()
    for text in texts:
        try:
            routing.route(text)
        except InvalidInput:  # a few plan numbers are unknown to libphonenumber's metadata
            refused += 1
    figures["single_seconds"] = time.perf_counter() - started
    figures["single_refused"] = refused
    started = time.perf_counter()
    for text, n in zip(texts, sample.tolist(), strict=True):
        index.route_national(text, n)
    figures["national_seconds"] = time.perf_counter() - started
    figures["single_calls"] = len(texts)
    figures["rss_end"] = rss()
    figures["peak_end"] = peak_rss()
    engine.dispose()
    print("RESULT " + json.dumps(figures), flush=True)


def run_child(url: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", url, "--bulk", str(args.bulk),
               "--single", str(args.single), "--repeat", str(args.repeat),
               "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    raise SystemExit(f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


# --- report -----------------------------------------------------------------------------------

def report(args: argparse.Namespace, imported: dict[str, float], figures: dict[str, Any],
           db_bytes: int | None) -> None:
    rows = int(imported["rows"])
    best = min(figures["bulk_runs"])
    bulk_rate = figures["bulk_numbers"] / best
    single_rate = figures["single_calls"] / figures["single_seconds"]
    national_rate = figures["single_calls"] / figures["national_seconds"]
    rss_after = figures["rss_after_build"]
    print()
    print(f"== routing benchmark: {args.db}, {rows:,} ported numbers, "
          f"{figures['ranges']:,} plan ranges ==")
    print("load average (1/5/15 min) at the end: "
          + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs")
    print(f"import_ports end to end   {imported['total']:8.1f} s   "
          f"{rows / imported['total']:>12,.0f} rows/s")
    print(f"  parse (read_ports)      {imported['parse']:8.1f} s   "
          f"{rows / imported['parse']:>12,.0f} rows/s")
    print(f"  DB load (load_ports)    {imported['load']:8.1f} s   "
          f"{rows / imported['load']:>12,.0f} rows/s")
    print(f"  importer peak RSS       {imported['peak_rss'] / MIB:8,.0f} MiB "
          f"(after parse {imported['parse_peak_rss'] / MIB:,.0f} MiB)")
    if db_bytes is not None:
        print(f"  database size           {db_bytes / MIB:8,.0f} MiB")
    print(f"index build (router())    {figures['build_seconds']:8.1f} s   "
          f"{figures['ported'] / figures['build_seconds']:>12,.0f} rows/s   "
          f"index arrays {figures['index_nbytes'] / MIB:,.0f} MiB")
    print(f"route_bulk                {best * 1000:8.1f} ms  {bulk_rate:>12,.0f} numbers/s "
          f"for {figures['bulk_numbers']:,} (runs "
          f"{', '.join(f'{r * 1000:.0f}' for r in figures['bulk_runs'])} ms; "
          f"{figures['bulk_ported_share']:.0%} ported, {figures['bulk_unrouted']} unrouted)"
          f"   goal {BULK_GOAL:,}/s: ratio {bulk_rate / BULK_GOAL:.2f}")
    sorted_rate = figures["bulk_numbers"] / min(figures["bulk_sorted_runs"])
    print(f"  queries sorted first    {min(figures['bulk_sorted_runs']) * 1000:8.1f} ms  "
          f"{sorted_rate:>12,.0f} numbers/s (argsort + route_bulk + unpermute; diagnostic for "
          f"the proposed fix)   ratio {sorted_rate / BULK_GOAL:.2f}")
    print(f"route() single calls      {figures['single_seconds']:8.2f} s   "
          f"{single_rate:>12,.0f} calls/s ({figures['single_calls']:,} calls, "
          f"{1e6 / single_rate:.1f} us/call; {figures['single_refused']} refused by "
          "normalize() as not valid numbers)")
    print(f"  route_national only     {figures['national_seconds']:8.2f} s   "
          f"{national_rate:>12,.0f} calls/s ({1e6 / national_rate:.1f} us/call)")
    print(f"RSS fresh process         before build {figures['rss_before'] / MIB:,.0f} MiB, "
          f"after build {rss_after / MIB:,.0f} MiB, peak {figures['peak_end'] / MIB:,.0f} MiB"
          f"   goal < 1024 MiB: ratio {rss_after / RSS_GOAL:.2f} (peak "
          f"{figures['peak_end'] / RSS_GOAL:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=20_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--bulk", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plan", type=Path, default=PLAN)
    parser.add_argument("--csv", type=Path, default=None,
                        help="where to keep the generated CSV (reused when present)")
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.bulk, args.single, args.repeat, args.seed)
        return
    with tempfile.TemporaryDirectory(prefix="numident-bench-routing-") as temp:
        directory = Path(temp)
        ports = args.csv or directory / "ports.csv"
        ensure_csv(ports, args.plan, args.ports, args.seed)
        with database(args.db, directory) as url:
            imported = run_import(url, args.plan, ports)
            db_bytes = database_size(url)
            figures = run_child(url, args)
        report(args, imported, figures, db_bytes)


if __name__ == "__main__":
    main()
