"""Benchmark: single identification over HTTP on loopback, against a minimal FastAPI endpoint.

    .venv/bin/python bench/bench_identify_http.py                      # SQLite, 100k subscribers
    .venv/bin/python bench/bench_identify_http.py --db postgresql      # a fresh PostgreSQL database
    .venv/bin/python bench/bench_identify_http.py --duration 20 --concurrency 64
    .venv/bin/python bench/bench_identify_http.py --api sim-swap       # CAMARA SIM Swap check

What runs:

* numident: the real gateway, ``numident operator serve`` in a child process (uvicorn, one
  worker, default settings: uvloop + httptools, no access log), NUMIDENT_HOME in a temporary
  directory, the store either a temporary SQLite file or a PostgreSQL database created for the
  run (and dropped at the end). The registry holds ``--subscribers`` synthetic active numbers
  +7916NNNNNNN inserted with SQLAlchemy Core in one transaction; one organizer is registered
  and a token obtained at ``/oauth2/token`` exactly as an organizer would.
* minimal: a tiny FastAPI app (one ``POST`` route on the same path, same pydantic body, returns
  a small JSON) served by uvicorn with the same settings. Measured twice: an ``async def``
  route (the framework's best case, and numident's kind of route) and a ``def`` route (run in
  the thread pool). The headline ratio is numident / minimal(async).
* load: ``wrk`` (C, one thread, ``--concurrency`` keep-alive connections) posting
  ``{"phoneNumber", "identificationCode"}`` for random registered numbers, the same script for
  every target; ``--warmup`` seconds first (discarded), then ``--duration`` seconds measured.

The machine has 2 cores: by default the server is pinned to CPU 0 and wrk to CPU 1
(``taskset``), so each gets one core (PostgreSQL's own processes are not pinned: they float).
With ``--api sim-swap`` the target is CAMARA ``POST /sim-swap/vwip/check``
(``{"phoneNumber", "maxAge"}``, a read of the registry and its SIM swap events, no write) and
the minimal app serves the same path and body.

Prints figures; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from scratch import fill_subscribers, free_port, scratch_database
from sqlalchemy import create_engine, func, select

ORGANIZER = "bench"


@dataclass(frozen=True)
class Api:
    """What is measured: the operation's path, its token scope, wrk's request body (a Lua
    format of the number's index), and a request whose answer must include ``expected``."""

    path: str
    scope: str
    body_format: str
    check: dict[str, Any]
    expected: dict[str, Any]


APIS = {
    "identification": Api("/identification/v1/requests", "identification",
                          '{"phoneNumber":"+7916%07d","identificationCode":"u-%d"}',
                          {"phoneNumber": "+79160000001", "identificationCode": "check"},
                          {"result": "confirmed"}),
    "sim-swap": Api("/sim-swap/vwip/check", "sim-swap:check",
                    '{"phoneNumber":"+7916%07d","maxAge":240}',
                    {"phoneNumber": "+79160000001", "maxAge": 240}, {"swapped": False}),
}

WRK_SCRIPT = r"""
local n = %(n)d
math.randomseed(%(seed)d)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  local i = math.random(0, n - 1)
  local body = string.format('%(body)s', i, i)
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,' ..
    '"p99_us":%%d,"max_us":%%d,"mean_us":%%f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


# --- the minimal app (runs in the child process started with --serve-minimal) ---------------

class Body(BaseModel):
    """The same body model as numident's ``IdentificationRequest``."""

    model_config = ConfigDict(extra="forbid")
    phoneNumber: StrictStr
    identificationCode: StrictStr


class CheckBody(BaseModel):
    """The same body model as numident's SIM Swap ``CreateCheckSimSwap``."""

    model_config = ConfigDict(extra="forbid")
    phoneNumber: StrictStr | None = None
    maxAge: StrictInt = Field(240, ge=1)


def serve_minimal(kind: str, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    identify, check = APIS["identification"].path, APIS["sim-swap"].path
    if kind == "async":
        @app.post(identify)
        async def answer_async(body: Body) -> dict[str, str]:
            return {"phoneNumber": body.phoneNumber, "result": "confirmed"}

        @app.post(check)
        async def check_async(body: CheckBody) -> dict[str, bool]:
            return {"swapped": False}
    else:
        @app.post(identify)
        def answer_sync(body: Body) -> dict[str, str]:
            return {"phoneNumber": body.phoneNumber, "result": "confirmed"}

        @app.post(check)
        def check_sync(body: CheckBody) -> dict[str, bool]:
            return {"swapped": False}

    # The same uvicorn settings as ``numident operator serve``.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                timeout_graceful_shutdown=5)


# --- setup ------------------------------------------------------------------------------------

def database(kind: str, directory: Path) -> AbstractContextManager[str]:
    return scratch_database(kind, directory / "operator.db", "numident_bench_http")


def prepare(url: str, subscribers: int) -> tuple[Any, float]:
    """Schema, ``subscribers`` active numbers (one transaction), one organizer; its key."""
    from numident.client.keys import generate_key
    from numident.operator import organizers
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    engine = create_database_engine(url)
    upgrade(engine, "operator")
    now = datetime.now(UTC)
    activated = datetime(2021, 3, 1, tzinfo=UTC)
    started = time.perf_counter()
    fill_subscribers(engine, subscribers, activated=activated, now=now)
    seconds = time.perf_counter() - started
    key = generate_key()
    organizers.add_organizer(engine, ORGANIZER, "http://127.0.0.1:9/notices",
                             json.dumps(key.public_jwk()), now,
                             scopes=[api.scope for api in APIS.values()])
    engine.dispose()
    return key, seconds


def pinned(cpu: str | None, command: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *command] if cpu is not None else command


@contextmanager
def server(command: list[str], env: dict[str, str], ready_url: str
           ) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                raise SystemExit(f"server exited with {child.returncode}: {command}")
            try:
                response = httpx2.get(ready_url, timeout=2)
                if response.status_code < 300:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {command}")
            time.sleep(0.1)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def written_bytes(pid: int) -> int:
    """Bytes a process has caused to be written to storage (``write_bytes`` of /proc/PID/io):
    with SQLite, the WAL frames and checkpoints of every commit. It does not depend on how
    busy the machine is, unlike the timings."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def run_wrk(args: Any, url: str, script: Path, seconds: float) -> dict[str, Any]:
    command = pinned(args.client_cpu, ["wrk", "-t", "1", "-c", str(args.concurrency),
                                       "-d", f"{max(1, round(seconds))}s", "--timeout", "10s", "-s",
                                       str(script), url])
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in output.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT "):])
    return result


def measure(args: Any, label: str, pid: int, url: str, script: Path,
            profile: str | None = None) -> dict[str, Any]:
    run_wrk(args, url, script, args.warmup)
    spy = None
    if profile:  # sample the server during the measured run (py-spy, folded stacks)
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                                str(pid), "--duration", str(args.duration), "--rate", "200",
                                "--gil", "--format", "raw", "--output", profile,
                                "--nonblocking"], stdout=subprocess.DEVNULL)
    before, written = cpu_seconds(pid), written_bytes(pid)
    result = run_wrk(args, url, script, args.duration)
    written = written_bytes(pid) - written
    if spy is not None:
        spy.wait()
    result["server_cpu"] = (cpu_seconds(pid) - before) / (result["duration_us"] / 1e6)
    ok = result["requests"] - result["status_errors"]
    result["rps"] = ok / (result["duration_us"] / 1e6)
    # The server's own CPU per answer: on a shared machine the CPU it got varies from run to
    # run, what each answer costs much less.
    result["cpu_per_request_us"] = result["server_cpu"] * 1e6 / result["rps"] if ok else 0.0
    result["written_per_request"] = written / ok if ok else 0.0
    result["label"] = label
    return result


def show(result: dict[str, Any]) -> None:
    errors = sum(result[k] for k in ("status_errors", "connect_errors", "read_errors",
                                     "write_errors", "timeouts"))
    print(f"  {result['label']:<16} {result['rps']:9.0f} req/s   "
          f"p50 {result['p50_us'] / 1000:7.2f} ms"
          f"   p90 {result['p90_us'] / 1000:7.2f} ms   p99 {result['p99_us'] / 1000:7.2f} ms"
          f"   max {result['max_us'] / 1000:7.1f} ms   server CPU {result['server_cpu']:4.0%}"
          f" ({result['cpu_per_request_us']:5.0f} us/request)   errors {errors}"
          + (f"   storage writes {result['written_per_request'] / 1024:5.1f} KiB/request"
             if result["written_per_request"] else ""), flush=True)


def main(args: Any) -> None:
    api = APIS[args.api]
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    numident_cli = Path(sys.executable).parent / "numident"
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="numident-bench-http-") as tmp:
        directory = Path(tmp)
        with database(args.db, directory) as url:
            key, fill_seconds = prepare(url, args.subscribers)
            print(f"api={args.api} ({api.path}) db={args.db} subscribers={args.subscribers} "
                  f"(filled in {fill_seconds:.1f} s) "
                  f"duration={args.duration}s warmup={args.warmup}s "
                  f"concurrency={args.concurrency} (wrk, 1 thread, keep-alive)")
            print(f"CPU split: {os.cpu_count()} cores; server pinned to CPU {args.server_cpu}, "
                  f"wrk pinned to CPU {args.client_cpu}"
                  + ("; PostgreSQL processes unpinned" if args.db == "postgresql" else "")
                  if args.server_cpu is not None else "CPU split: no pinning (--no-pin)")

            # numident
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {**os.environ, "NUMIDENT_HOME": str(directory / "home"),
                   "NUMIDENT_DATABASE_URL": url, "NUMIDENT_OPERATOR__PUBLIC_URL": base,
                   "NUMIDENT_LOG_LEVEL": "WARNING"}
            command = pinned(args.server_cpu, [str(numident_cli), "operator", "serve",
                                               "--host", "127.0.0.1", "--port", str(port)])
            with server(command, env, f"{base}/healthz") as child:
                token = obtain_token(key, base, api.scope)
                script = directory / "load.lua"
                script.write_text(WRK_SCRIPT % {"n": args.subscribers, "seed": 42,
                                                "token": token, "body": api.body_format})
                check = httpx2.post(f"{base}{api.path}",
                                   headers={"Authorization": f"Bearer {token}"}, json=api.check)
                if check.status_code != 200 or not api.expected.items() <= check.json().items():
                    raise SystemExit(f"unexpected answer: {check.status_code} {check.text}")
                results.append(measure(args, "numident", child.pid, f"{base}{api.path}",
                                       script, args.profile))
                show(results[-1])
            stored = count_requests(url)

            # the minimal endpoints, same uvicorn settings, same wrk script
            for kind in ("async", "sync"):
                port = free_port()
                command = pinned(args.server_cpu, [sys.executable, __file__, "--serve-minimal",
                                                   kind, "--port", str(port)])
                url_min = f"http://127.0.0.1:{port}{api.path}"
                ready = f"http://127.0.0.1:{port}/openapi.json"
                with server(command, dict(os.environ), ready) as child:
                    results.append(measure(args, f"minimal ({kind})", child.pid, url_min,
                                           script))
                    show(results[-1])

    numident, *minimal = results
    if args.api == "identification":
        print(f"  numident stored {stored} identification requests (warm-up and check "
              "included)")
    goal = " (goal >= 0.5)" if args.api == "identification" else ""
    for other, note in zip(minimal, (goal, ""), strict=True):
        if not other["rps"]:
            print(f"ratio numident/{other['label']}: n/a (no successful requests)")
            continue
        print(f"ratio numident/{other['label']}: throughput {numident['rps'] / other['rps']:.2f}"
              f"{note}; latency p50 {numident['p50_us'] / other['p50_us']:.1f}x, "
              f"p99 {numident['p99_us'] / other['p99_us']:.1f}x; CPU "
              f"{other['cpu_per_request_us'] / numident['cpu_per_request_us']:.2f} (server "
              "CPU per request, theirs / ours: the throughput ratio when both are CPU-bound)")
    if args.profile:
        print(f"py-spy folded stacks of the numident server: {args.profile}")


def obtain_token(key: Any, base: str, scope: str) -> str:
    from numident.client.assertions import make_client_assertion, token_request_form
    from numident.core.clock import SystemClock

    assertion = make_client_assertion(key, ORGANIZER, f"{base}/oauth2/token", SystemClock())
    response = httpx2.post(f"{base}/oauth2/token", data=token_request_form(assertion, scope))
    response.raise_for_status()
    return str(response.json()["access_token"])


def count_requests(url: str) -> int:
    from numident.operator.tables import identification_requests

    engine = create_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count())
                                 .select_from(identification_requests)).scalar_one())
    engine.dispose()
    return count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=sorted(APIS), default="identification")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=3, help="discarded seconds first")
    parser.add_argument("--concurrency", type=int, default=32, help="wrk connections")
    parser.add_argument("--server-cpu", default="0", help="CPU list for the server (taskset)")
    parser.add_argument("--client-cpu", default="1", help="CPU list for wrk (taskset)")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy the numident server during the measured run: folded "
                        "stacks of the thread holding the GIL (where Python CPU goes)")
    parser.add_argument("--no-pin", action="store_true", help="let the OS place processes")
    parser.add_argument("--serve-minimal", choices=["async", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.no_pin or shutil.which("taskset") is None:
        arguments.server_cpu = arguments.client_cpu = None
    if arguments.serve_minimal:
        serve_minimal(arguments.serve_minimal, arguments.port)
    else:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # drop the database on kill
        main(arguments)
