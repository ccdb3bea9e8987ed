"""Benchmark: 1, 2 and 4 gateway replicas on one PostgreSQL database, the load spread over them.

    .venv/bin/python bench/bench_replicas.py                # 1, 2, 4 replicas, 10 s each
    .venv/bin/python bench/bench_replicas.py --replicas 1,2 --duration 5 --no-sqlite
    .venv/bin/python bench/bench_replicas.py --nats         # replicas with operator.nats_url

What runs: ``--subscribers`` active numbers in a fresh PostgreSQL database and one organizer
(as in ``bench_identify_http.py``), then for each replica count N, N real ``numident operator
serve`` processes on 127.0.0.1 sharing that database, one ``NUMIDENT_HOME`` (so one signing
key and holder key) and one ``operator.public_url`` (the issuer, as behind a balancer). The
load is ``wrk`` with ``--threads`` threads; its Lua ``setup`` points thread i at replica
i mod N, so the connections are spread evenly and no balancer process takes CPU. Each count
is measured twice: single identifications (``POST /identification/v1/requests``) and batches
of ``--batch-size`` (``POST .../requests/batch``), ``--warmup`` seconds discarded first.

Then the SQLite figure beside it: one ``serve`` on a SQLite file (the only shape SQLite
allows), the same two loads, and a second ``serve`` on the same file, which must be refused
(exit 1, ``DATABASE_IN_USE``).

The machine has 2 cores that the replicas, PostgreSQL and wrk share, so nothing is pinned and
every figure comes with where the CPU went during the measured run: the replicas (each), the
PostgreSQL backends serving this database, wrk, and the rest of the machine (other work on
it). ``gateway ms/item`` (replica CPU per answered item) stays flat when replicas add no work
of their own; the throughput then grows until the cores run out.

Prints figures; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_identify_http import APIS, cpu_seconds, obtain_token, prepare, server
from scratch import free_port, postgres_database
from sqlalchemy import create_engine, text

NUMIDENT = Path(sys.executable).parent / "numident"
NATS_PREFIX = f"numident-bench-{uuid.uuid4().hex[:12]}"

WRK_SCRIPT = r"""
local ports = {%(ports)s}
local n = %(n)d
local batch = %(batch)d
local started = 0
function setup(thread)
  local port = ports[(started %% #ports) + 1]
  thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]
  thread:set("seed", 42 + started)
  started = started + 1
end
function init(args)
  math.randomseed(seed)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  if batch == 0 then
    local i = math.random(0, n - 1)
    return wrk.format(nil, nil, nil, string.format(
      '{"phoneNumber":"+7916%%07d","identificationCode":"u-%%d"}', i, i))
  end
  local items = {}
  for k = 1, batch do
    local i = math.random(0, n - 1)
    items[k] = string.format('{"phoneNumber":"+7916%%07d","identificationCode":"u-%%d"}', i, i)
  end
  return wrk.format(nil, nil, nil, '{"requests":[' .. table.concat(items, ",") .. ']}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT %%d %%d %%d %%d %%d %%d %%d %%d %%d\n', summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50),
    latency:percentile(99), latency.max, 0, 0))
end
"""


@dataclass
class Run:
    """One measured wrk run and where the CPU went meanwhile (CPU seconds per second)."""

    label: str
    items_per_request: int
    requests: int = 0
    seconds: float = 0.0
    status_errors: int = 0
    other_errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    replica_cpu: list[float] = field(default_factory=list)
    postgres_cpu: float = 0.0
    wrk_cpu: float = 0.0
    machine_cpu: float = 0.0
    connections: int = 0
    opened: int = 0

    @property
    def items_per_second(self) -> float:
        return (self.requests - self.status_errors) * self.items_per_request / self.seconds

    @property
    def gateway_ms_per_item(self) -> float:
        answered = (self.requests - self.status_errors) * self.items_per_request
        return sum(self.replica_cpu) * self.seconds / answered * 1000 if answered else 0.0


def machine_busy() -> float:
    """CPU seconds all cores spent outside idle and iowait since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def sessions(url: str | None) -> int:
    """Connections ever opened to the benchmark's database (pg_stat_database.sessions)."""
    if url is None:
        return 0
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT sessions FROM pg_stat_database "
                                  "WHERE datname = current_database()")).scalar_one()
    engine.dispose()
    return int(count)


def backend_pids(url: str | None) -> list[int]:
    """PostgreSQL server processes connected to the benchmark's database (same machine)."""
    if url is None:
        return []
    engine = create_engine(url)
    with engine.connect() as conn:
        pids = [int(p) for p in conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalars()]
    engine.dispose()
    return pids


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a closed connection
            found[pid] = cpu_seconds(pid)
    return found


def postgres_cpu(url: str | None, before: dict[int, float]) -> tuple[float, int]:
    """CPU seconds the database's backends spent since ``before`` (a backend opened since
    counts whole; one closed since is lost, so this is a lower bound), and how many there
    are now."""
    after = cpu_by_pid(backend_pids(url))
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()), len(after)


def run_wrk(args: Any, script: Path, seconds: float, url: str, connections: int
            ) -> list[int]:
    output = subprocess.run(
        ["wrk", "-t", str(args.threads), "-c", str(connections), "-d",
         f"{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url],
        capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in output.splitlines() if ln.startswith("RESULT "))
    return [int(v) for v in line.split()[1:]]


def measure(args: Any, label: str, items: int, script: Path, url: str, replicas: list[int],
            database_url: str | None) -> Run:
    connections = args.concurrency if items == 1 else args.batch_concurrency
    run_wrk(args, script, args.warmup, url, connections)
    before = [cpu_seconds(pid) for pid in replicas]
    postgres, machine = cpu_by_pid(backend_pids(database_url)), machine_busy()
    opened = sessions(database_url)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    requests, duration_us, status, other, p50, p99, *_ = run_wrk(args, script, args.duration,
                                                                 url, connections)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = duration_us / 1e6
    run = Run(label, items, requests, seconds, status, other, p50 / 1000, p99 / 1000)
    run.replica_cpu = [(cpu_seconds(pid) - b) / seconds for pid, b in zip(replicas, before,
                                                                          strict=True)]
    postgres_seconds, run.connections = postgres_cpu(database_url, postgres)
    run.opened = sessions(database_url) - opened - 1  # less the one that asked
    run.postgres_cpu = postgres_seconds / seconds
    run.wrk_cpu = (after.ru_utime + after.ru_stime - children.ru_utime
                   - children.ru_stime) / seconds
    run.machine_cpu = (machine_busy() - machine) / seconds
    return run


def show(run: Run, one: Run | None) -> None:
    ratio = f"{run.items_per_second / one.items_per_second:5.2f}x" if one else "  n/a"
    other = run.machine_cpu - sum(run.replica_cpu) - run.postgres_cpu - run.wrk_cpu
    print(f"  {run.label:<22} {run.items_per_second:8.0f} items/s  vs one {ratio}   "
          f"p50 {run.p50_ms:6.1f} ms  p99 {run.p99_ms:7.1f} ms   errors "
          f"{run.status_errors + run.other_errors:<4} gateway {run.gateway_ms_per_item:5.2f} "
          f"ms/item", flush=True)
    print(f"  {'':<22} CPU: replicas {sum(run.replica_cpu):4.2f} ("
          + " ".join(f"{c:.2f}" for c in run.replica_cpu)
          + f")  postgres {run.postgres_cpu:4.2f}  wrk {run.wrk_cpu:4.2f}  rest of machine "
          f"{max(0.0, other):4.2f}  (of {os.cpu_count()} cores); PostgreSQL connections: "
          f"{run.connections} at the end, {run.opened} opened during the run", flush=True)


@contextmanager
def replicas(count: int, url: str, home: Path, public_url: str, nats: str | None
             ) -> Iterator[list[tuple[int, int]]]:
    """``count`` gateways on ``url``; yields (pid, port) of each. The first starts alone so
    that it creates the shared keys in ``home`` before the others read them."""
    env = {**os.environ, "NUMIDENT_HOME": str(home), "NUMIDENT_DATABASE_URL": url,
           "NUMIDENT_OPERATOR__PUBLIC_URL": public_url, "NUMIDENT_LOG_LEVEL": "WARNING"}
    if nats:
        env["NUMIDENT_OPERATOR__NATS_URL"] = nats
        env["NUMIDENT_OPERATOR__NATS_PREFIX"] = NATS_PREFIX
    ports = [int(public_url.rsplit(":", 1)[1])] + [free_port() for _ in range(count - 1)]
    with ExitStack() as stack:
        started = []
        for port in ports:
            command = [str(NUMIDENT), "operator", "serve", "--host", "127.0.0.1", "--port",
                       str(port)]
            child = stack.enter_context(server(command, env,
                                               f"http://127.0.0.1:{port}/healthz"))
            started.append((child.pid, port))
        yield started


def write_script(directory: Path, ports: list[int], subscribers: int, batch: int,
                 token: str) -> Path:
    script = directory / f"load-{len(ports)}-{batch}.lua"
    script.write_text(WRK_SCRIPT % {"ports": ", ".join(map(str, ports)), "n": subscribers,
                                    "batch": batch, "token": token})
    return script


def measure_both(args: Any, directory: Path, key: Any, running: list[tuple[int, int]],
                 url: str | None, label: str, ones: dict[str, Run]) -> None:
    base = f"http://127.0.0.1:{running[0][1]}"
    token = obtain_token(key, base, APIS["identification"].scope)
    ports, pids = [port for _, port in running], [pid for pid, _ in running]
    for kind, batch, path in (("single", 0, "/identification/v1/requests"),
                              (f"batch {args.batch_size}", args.batch_size,
                               "/identification/v1/requests/batch")):
        script = write_script(directory, ports, args.subscribers, batch, token)
        run = measure(args, f"{label} {kind}", max(1, batch), script, f"{base}{path}", pids,
                      url)
        show(run, ones.get(kind))
        ones.setdefault(kind, run)


def second_sqlite_server(url: str, home: Path) -> tuple[int, str]:
    """Start a second ``serve`` on the SQLite file a first one serves: its exit code, stderr."""
    env = {**os.environ, "NUMIDENT_HOME": str(home), "NUMIDENT_DATABASE_URL": url}
    second = subprocess.run([str(NUMIDENT), "operator", "serve", "--host", "127.0.0.1",
                             "--port", str(free_port())], env=env, capture_output=True,
                            text=True, timeout=60)
    return second.returncode, " ".join(second.stderr.split())


async def delete_nats_streams(url: str) -> None:
    """Drop the streams the replicas declared under this run's prefix."""
    from types import SimpleNamespace

    from numident.operator.nats_mode import Subjects
    from numident.outbox.nats import connect

    subjects = Subjects.for_gateway(SimpleNamespace(nats_prefix=NATS_PREFIX,  # type: ignore[arg-type]
                                                    name="operator"))
    connection = await connect(url)
    js = connection.jetstream()
    for stream in (subjects.lifecycle_stream, subjects.notice_stream):
        try:
            await js.delete_stream(stream)
        except Exception as exc:
            print(f"  (stream {stream} not deleted: {exc})")
    await connection.close()


def main(args: Any) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    counts = [int(c) for c in args.replicas.split(",")]
    if max(counts) > args.threads:
        raise SystemExit(f"--threads {args.threads} cannot load {max(counts)} replicas")
    print(f"replicas={counts} subscribers={args.subscribers} duration={args.duration}s "
          f"warmup={args.warmup}s wrk: {args.threads} threads, {args.concurrency} keep-alive "
          f"connections ({args.batch_concurrency} for batches of {args.batch_size}; thread i -> "
          f"replica i mod N); {os.cpu_count()} cores, nothing pinned; "
          f"load average {os.getloadavg()[0]:.2f}" + ("; operator.nats_url set" if args.nats
                                                     else ""))
    with tempfile.TemporaryDirectory(prefix="numident-bench-replicas-") as tmp:
        directory = Path(tmp)
        with contextmanager(postgres_database)("numident_bench_replicas") as url:
            key, fill_seconds = prepare(url, args.subscribers)
            print(f"PostgreSQL: {args.subscribers} subscribers filled in {fill_seconds:.1f} s")
            ones: dict[str, Run] = {}
            for count in counts:
                public_url = f"http://127.0.0.1:{free_port()}"
                try:
                    with replicas(count, url, directory / "home", public_url,
                                  args.nats_url if args.nats else None) as running:
                        measure_both(args, directory, key, running, url,
                                     f"postgresql x{count}", ones)
                finally:
                    if args.nats:
                        asyncio.run(delete_nats_streams(args.nats_url))
        if args.no_sqlite:
            return
        sqlite_url = f"sqlite:///{directory / 'operator.db'}"
        key, fill_seconds = prepare(sqlite_url, args.subscribers)
        print(f"SQLite: {args.subscribers} subscribers filled in {fill_seconds:.1f} s")
        home = directory / "sqlite-home"
        with replicas(1, sqlite_url, home, f"http://127.0.0.1:{free_port()}", None) as running:
            measure_both(args, directory, key, running, None, "sqlite x1", {})
            code, stderr = second_sqlite_server(sqlite_url, home)
            verdict = "refused as it must" if code == 1 and "DATABASE_IN_USE" in stderr \
                else "NOT refused"
            print(f"  sqlite second serve on the same file: exit {code}, {verdict}: {stderr}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2,4", help="replica counts, comma separated")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=3, help="discarded seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections, in all")
    parser.add_argument("--threads", type=int, default=4,
                        help="wrk threads; thread i loads replica i mod N")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batch-concurrency", type=int, default=8,
                        help="wrk connections for batches, in all")
    parser.add_argument("--nats", action="store_true",
                        help="set operator.nats_url on the replicas (NUMIDENT_TEST_NATS_URL)")
    parser.add_argument("--nats-url", default=os.environ.get("NUMIDENT_TEST_NATS_URL",
                                                             "nats://127.0.0.1:4222"))
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite figure")
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # drop the database on kill
    main(arguments)
