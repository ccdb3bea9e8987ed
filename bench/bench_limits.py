"""Benchmark: what an organizer's limits cost, and what they let through.

    .venv/bin/python bench/bench_limits.py                     # SQLite, 3 s per case
    .venv/bin/python bench/bench_limits.py --db postgresql --seconds 5

In process, through ``Gateway.identify`` (the code path of the HTTP API, without HTTP), one
organizer sends identification batches of ``--batch`` items for random registered numbers as
fast as one thread can, for ``--seconds`` per case:

* ``no limits``: the gateway as configured by default;
* ``daily quota``: a quota far above what the run reaches: the cost of counting each request
  in ``organizer_daily_items`` (one conditional upsert);
* ``rate limit R``: the organizer's rate set to ``--rate`` items/s: the items admitted per second
  stay within R * (seconds + 1) / seconds (the bucket starts full), every other batch is
  refused with 429 before any work.

It also times ``TokenBucket.take`` alone. Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scratch import postgres_database

from numident.client.keys import generate_key
from numident.config import load_settings
from numident.core.rate import TokenBucket
from numident.errors import TooManyRequests
from numident.operator import organizers, registry
from numident.operator.app import create_app
from numident.operator.gateway import Gateway
from numident.operator.identification import Item, Organizer

NUMBERS = [f"+7916{n:07d}" for n in range(20_000)]


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
    else:
        yield from postgres_database("numident_bench_limits")


def run_case(gateway: Gateway, organizer: Organizer, batch: int, seconds: float
             ) -> tuple[int, int, float]:
    """Send batches for ``seconds``: (items admitted, items refused, elapsed seconds)."""
    admitted = refused = 0
    rng = random.Random(7)
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        items = [Item(rng.choice(NUMBERS), f"code-{sent + n}") for n in range(batch)]
        sent += batch
        try:
            gateway.identify(organizer, items)
            admitted += batch
        except TooManyRequests:
            refused += batch
            time.sleep(0.001)  # a client that retries at once, but not in a hot spin
    return admitted, refused, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000, help="items/s of the rate case")
    parser.add_argument("--rounds", type=int, default=3,
                        help="the cases run in turn this often; the median is printed")
    args = parser.parse_args()

    bucket = TokenBucket.full(1e12, now=0.0)
    count = 200_000
    started = time.perf_counter()
    for n in range(count):
        bucket.take(1, now=n * 1e-6)
    print(f"TokenBucket.take: {(time.perf_counter() - started) / count * 1e9:.0f} ns per call")

    with tempfile.TemporaryDirectory() as scratch, database(args.db, Path(scratch)) as url:
        home = Path(scratch)
        settings = load_settings(None, home=str(home), database_url=url)
        app = create_app(settings, background=False)
        gateway: Gateway = app.state.gateway
        export = home / "export.csv"
        export.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
            f"{n},C-{i},active,2024-01-01\n" for i, n in enumerate(NUMBERS)), encoding="utf-8")
        registry.import_subscribers(gateway.engine, export, now=gateway.clock.now(),
                                    notice_source="http://127.0.0.1:8080",
                                    handlers=gateway.lifecycle)
        record = organizers.add_organizer(
            gateway.engine, "bench", "http://127.0.0.1:9/notices",
            json.dumps(generate_key().public_jwk()), gateway.clock.now())
        organizer = Organizer(record.id, record.name)
        print(f"db={args.db} batch={args.batch} seconds={args.seconds} rounds={args.rounds} "
              f"subscribers={len(NUMBERS)} (medians)")
        cases = [("no limits", organizers.Limits()),
                 ("daily quota", organizers.Limits(daily_quota=10**9)),
                 (f"rate limit {args.rate}/s", organizers.Limits(rate_limit=args.rate))]
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in cases}
        for _ in range(args.rounds):  # in turn, so a busy moment of the machine hits all
            for name, limits in cases:
                organizers.set_limits(gateway.engine, "bench", limits)
                gateway.limits.forget(record.id)
                gateway.limits._buckets.clear()  # each rate run starts from a full bucket
                admitted, refused, elapsed = run_case(gateway, organizer, args.batch,
                                                      args.seconds)
                runs[name].append((admitted / elapsed, refused / elapsed, elapsed))
        baseline = statistics.median(r[0] for r in runs["no limits"])
        for name, limits in cases:
            per_second = statistics.median(r[0] for r in runs[name])
            refused_per_second = statistics.median(r[1] for r in runs[name])
            elapsed = runs[name][0][2]
            bound = ""
            if limits.rate_limit:  # the first, full bucket adds one second's worth
                bound = f"   bound {limits.rate_limit * (elapsed + 1) / elapsed:.0f}"
            print(f"  {name:<20} {per_second:9.0f} items/s admitted   "
                  f"{refused_per_second:9.0f} items/s refused   "
                  f"ratio to no limits {per_second / baseline:.2f}{bound}")
        gateway.engine.dispose()


if __name__ == "__main__":
    main()
