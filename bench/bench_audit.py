"""Benchmark: what the audit chain costs per entry, for writers and for the sealer.

    .venv/bin/python bench/bench_audit.py                        # SQLite, 20,000 entries
    .venv/bin/python bench/bench_audit.py --db postgresql --entries 50000

In process, ``--entries`` audit entries are written through ``audit.write`` in transactions of
``--per-transaction`` entries (an identification writes three: received, answered, usage),
once into a schema from before the chain (revision 0007) and once into the chained schema,
where they are inserted unsealed. Then, on the chained schema: sealing them all (``seal``,
batches of ``--batch``), walking the chain (``verify_chain``) and exporting it (``export``).
Prints microseconds per entry, the writers' ratio chained/unchained and the walk's peak
Python memory (tracemalloc); never fails on time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scratch import scratch_database
from sqlalchemy import Engine

from numident.audit.bundle import export
from numident.audit.checkpoints import key_lookup
from numident.audit.log import audit_log
from numident.audit.sealer import seal
from numident.audit.verify import Verified, verify_chain
from numident.client.keys import generate_key
from numident.operator import audit
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

START = datetime(2026, 11, 1, tzinfo=UTC)


def write(engine: Engine, entries: int, per_transaction: int) -> float:
    """Seconds to write ``entries`` as the gateway does."""
    started = time.perf_counter()
    for first in range(0, entries, per_transaction):
        with engine.begin() as conn:
            audit.write(conn, [audit.entry(START + timedelta(milliseconds=n), "chat",
                                           "answered", phone_number="+79161234567",
                                           request_id=f"{n:036d}",
                                           detail={"result": "confirmed"})
                               for n in range(first, min(first + per_transaction, entries))])
    return time.perf_counter() - started


def timed(label: str, seconds: float, entries: int) -> float:
    per_entry = seconds / entries * 1e6
    print(f"{label:<34} {seconds:8.2f} s  {per_entry:8.1f} us/entry  "
          f"{entries / seconds:10.0f} entries/s")
    return per_entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--per-transaction", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    chain = audit_log("operator")
    key = generate_key()
    n = args.entries
    print(f"{args.db}: {n} audit entries, {args.per_transaction} per transaction")
    with tempfile.TemporaryDirectory() as folder:
        with scratch_database(args.db, Path(folder) / "before.db", "numident_bench_audit"
                              ) as url:
            engine = create_database_engine(url)
            upgrade(engine, "operator", "0013")
            before = timed("write, before the chain (0013)", write(engine, n,
                                                                  args.per_transaction), n)
            engine.dispose()
        with scratch_database(args.db, Path(folder) / "chained.db", "numident_bench_audit"
                              ) as url:
            engine = create_database_engine(url)
            upgrade(engine, "operator")
            after = timed("write, chained schema (unsealed)", write(engine, n,
                                                                   args.per_transaction), n)
            started = time.perf_counter()
            head = seal(engine, chain, batch=args.batch, key=key, now=datetime.now(UTC))
            sealed = timed(f"seal (batches of {args.batch})", time.perf_counter() - started, n)
            assert head.seq == n
            started = time.perf_counter()
            result = verify_chain(engine, chain, key_lookup(key.public()), seal_first=False)
            timed("verify (walk, recompute, check)", time.perf_counter() - started, n)
            assert isinstance(result, Verified)
            assert result.seq == n
            tracemalloc.start()
            verify_chain(engine, chain, key_lookup(key.public()), seal_first=False)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"{'verify, peak Python memory':<34} {peak / 1024:8.0f} KiB (streamed: flat "
                  "in the chain's length)")
            started = time.perf_counter()
            day = START.date()
            export(engine, chain, key, day, day, Path(folder) / "export.zip", datetime.now(UTC))
            timed("export (verify + write the zip)", time.perf_counter() - started, n)
            engine.dispose()
    print(f"writer ratio chained/before: {after / before:.2f}; sealing adds "
          f"{sealed:.1f} us/entry of background work")


if __name__ == "__main__":
    main()
