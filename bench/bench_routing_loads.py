"""Benchmark: routing loads that meet, as separate ``numident`` processes.

    .venv/bin/python bench/bench_routing_loads.py            # SQLite, 2 rounds of 1M rows
    .venv/bin/python bench/bench_routing_loads.py --db postgresql --rows 400000 --rounds 3

Each round, on one database (a temporary SQLite file or a scratch PostgreSQL database):

* ``numident messenger import-ports`` loads a full snapshot of ``--rows`` numbers (the
  "before" data, ported to Beeline);
* process A loads another full snapshot of the same numbers (ported to T2);
* as soon as A holds the routing load lock (polled in ``routing_load_lock``), process B
  starts: in the "increment" rounds an increment of ``--increment`` numbers (half of them
  new) ported to MTS, in the "full" rounds a smaller full snapshot (a tenth of the numbers,
  ported to MTS, with ``--allow-shrink``: small enough to be read before A is done).

Then it counts the rows of B that are active (all, if no load lost another's work) and, in the
full rounds, the active rows that are not B's (none, if A did not switch on after B), the
rounds where B had to wait for A (it says so on stderr), and whether A and B reported
distinct generations. Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scratch import postgres_database
from sqlalchemy import create_engine, text

MTS, BEELINE, T2 = "7740000076", "7713076301", "7743895280"
HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
NUMIDENT = [sys.executable, "-m", "numident", "messenger"]
GENERATION = re.compile(r"generation (\d+)")


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'messenger.db'}"
        return
    yield from postgres_database("numident_bench_loads")


def ports_file(path: Path, numbers: range, inn: str) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("number,operator,ported_at\n")
        out.writelines(f"+7916{n:07d},{inn},\n" for n in numbers)
    return path


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*NUMIDENT, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for_lock(url: str, timeout: float) -> bool:
    """Poll until a load holds the routing load lock (True), or the time is up."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                held = conn.execute(text(
                    "SELECT count(*) FROM routing_load_lock WHERE holder IS NOT NULL")).scalar()
            if held:
                return True
            time.sleep(0.02)
        return False
    finally:
        engine.dispose()


def active_of(url: str, numbers: range, inn: str) -> int:
    """How many of ``numbers`` the active ports route to ``inn``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM routing_ports p JOIN routing_datasets d "
                "ON d.kind = 'ports' AND p.generation = d.generation "
                "JOIN routing_operators o ON o.id = p.operator_id "
                "WHERE o.inn = :inn AND p.number BETWEEN :low AND :high"),
                {"inn": inn, "low": 9160000000 + numbers.start,
                 "high": 9160000000 + numbers.stop - 1}).scalar_one())
    finally:
        engine.dispose()


def active_total(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM routing_ports p JOIN routing_datasets d "
                "ON d.kind = 'ports' AND p.generation = d.generation")).scalar_one())
    finally:
        engine.dispose()


def round_trip(url: str, env: dict[str, str], root: Path, second: str, rows: int,
               increment: int, timeout: float) -> dict[str, object]:
    before = ports_file(root / "Port_All_0.csv", range(rows), BEELINE)
    code, _, err = finish(start(env, "import-ports", "--allow-shrink", str(before)), timeout)
    assert code == 0, err
    first = start(env, "import-ports", str(ports_file(root / "Port_All_1.csv", range(rows), T2)))
    if second == "increment":
        numbers = range(rows - increment // 2, rows + increment - increment // 2)
        other = ports_file(root / "Port_Increment_2.csv", numbers, MTS)
    else:
        numbers = range(rows // 10)
        other = ports_file(root / "Port_All_2.csv", numbers, MTS)
    met = wait_for_lock(url, timeout)
    began = time.perf_counter()
    second_process = start(env, "import-ports", *(("--allow-shrink",) if second == "full"
                                                   else ()), str(other))
    code_b, out_b, err_b = finish(second_process, timeout)
    waited_seconds = time.perf_counter() - began
    code_a, out_a, err_a = finish(first, timeout)
    generations = [GENERATION.search(out) for out in (out_a, out_b)]
    return {
        "exit codes": (code_a, code_b), "met": met, "waited": "waiting for" in err_b,
        "second seconds": waited_seconds, "rows of B": len(numbers),
        "active rows of B": active_of(url, numbers, MTS),
        "active rows not B's": active_total(url) - active_of(url, numbers, MTS)
        if second == "full" else 0,
        "generations": tuple(int(g.group(1)) if g else None for g in generations),
        "errors": (err_a.strip()[-300:] if code_a else "", err_b.strip()[-300:] if code_b else ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--increment", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="numident-bench-loads-") as tmp:
        root = Path(tmp)
        with database(args.db, root) as url:
            env = {**os.environ, "NUMIDENT_HOME": str(root / "home"),
                   "NUMIDENT_DATABASE_URL": url}
            plan = root / "plan.csv"
            plan.write_text(HEADER + f'916;0000000;9999999;10000000;ПАО "МТС";М;М;{MTS}\n'
                            f"800;0000000;0000009;10;Т2;М;М;{T2}\n"
                            f"801;0000000;0000009;10;Б;М;М;{BEELINE}\n", encoding="utf-8")
            code, _, err = finish(start(env, "migrate"), args.timeout)
            assert code == 0, err
            code, _, err = finish(start(env, "import-plan", str(plan)), args.timeout)
            assert code == 0, err
            print(f"{args.db}: {args.rounds} round(s) of each kind, full loads of {args.rows} "
                  f"rows, increments of {args.increment}")
            for second in ("increment", "full"):
                totals = {"rows": 0, "active": 0, "waited": 0, "distinct": 0, "stray": 0}
                for number in range(args.rounds):
                    result = round_trip(url, env, root, second, args.rows, args.increment,
                                        args.timeout)
                    print(f"  {second} round {number + 1}: {result}")
                    totals["rows"] += int(result["rows of B"])  # type: ignore[call-overload]
                    totals["active"] += int(result["active rows of B"])  # type: ignore[call-overload]
                    totals["waited"] += bool(result["waited"])
                    totals["stray"] += int(result["active rows not B's"])  # type: ignore[call-overload]
                    a, b = result["generations"]  # type: ignore[misc]
                    totals["distinct"] += int(second == "increment" or a != b)
                lost = totals["rows"] - totals["active"]
                print(f"{second} during a full load: {lost} of {totals['rows']} rows lost, "
                      f"{totals['stray']} active rows of the earlier load left over; "
                      f"B waited for A in {totals['waited']} of {args.rounds} round(s); "
                      f"distinct generations where expected: {totals['distinct']} of "
                      f"{args.rounds}")


if __name__ == "__main__":
    main()
