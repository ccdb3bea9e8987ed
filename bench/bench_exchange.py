"""Benchmark: end-to-end identifications per second, messenger service -> operator gateway.

    .venv/bin/python bench/bench_exchange.py                       # 200 accounts, 16 at a time
    .venv/bin/python bench/bench_exchange.py --accounts 1000 --concurrency 32
    .venv/bin/python bench/bench_exchange.py --servers inprocess   # servers on the client's loop

What runs:

* servers (``numident.demo.stage`` helpers, as ``numident demo`` starts them): one operator
  gateway (the demo's Alfa, immediate answers, ``--accounts`` active subscribers +79166NNNNNNN
  imported) and one messenger service, real uvicorn servers on 127.0.0.1 sharing one event loop,
  SQLite files in a temporary folder, SMS by the file sender. The numbering plan and the port
  file are the demo's (loaded with ``RoutingService`` before the messenger starts), keys are
  exchanged and the organizer registered at the gateway exactly as in the demo. By default the
  servers run in a child process (``--servers process``, uvloop) so that the load generator
  does not share their interpreter; ``--servers inprocess`` runs everything on one loop like
  the demo does.
* load: ``--concurrency`` client tasks (httpx2, keep-alive) each take accounts from a queue; one
  identification = ``PUT /messenger/v1/accounts/{id}/phone-number``, the code read from the SMS
  file (``last_code_in_file``), ``POST .../phone-number/confirm``, then ``GET`` every
  ``--poll`` seconds until the state is final (``identified`` expected). ``--warmup``
  identifications (other accounts, other numbers) run first and are not counted.

Reported: identifications/second over the measured run, latency of the full identification
(PUT sent -> ``identified`` seen) p50/p90/p99/max, the split PUT / confirm / wait, and the
server process's CPU seconds per identification. The wait includes up to one ``--poll``
interval of polling delay. Never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2

FINAL = {"identified", "refused", "unanswered", "reidentification_required"}
NUMBER = "+79166{:06d}"
"""Subscribers of the demo's Alfa (DEF 916, the whole range) that the demo itself never uses."""


# --- the servers ------------------------------------------------------------------------------

async def start_servers(root: Path, subscribers: int) -> tuple[dict[str, Any], Any]:
    """One gateway (Alfa) and the messenger service; (connection facts, stop coroutine fn)."""
    from numident.demo import stage
    from numident.demo.data import OPERATORS, write_plan, write_ports
    from numident.messenger.bootstrap import routing_service
    from numident.messenger.keys import organizer_key
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    alfa = dataclasses.replace(OPERATORS[0], subscribers=tuple(
        (NUMBER.format(i), "active") for i in range(subscribers)))
    api_token = secrets.token_urlsafe(24)
    # Every operator of the demo has an endpoint in the messenger's settings (and a key); only
    # Alfa's gateway runs: every number of the benchmark is in Alfa's range.
    ports = {op.key: stage.free_port() for op in OPERATORS}
    messenger_port = stage.free_port()
    keys = stage.gateway_keys(root, ports)
    # Every account of the load comes from this host into Alfa's one range: the address and
    # range budgets and the circuit would stop it, as they are meant to stop such a burst.
    settings = stage.messenger_settings(
        root, messenger_port, keys, api_token, circuit=False,
        budgets={"per_address": False, "per_range": False, "per_region": False})
    engine = create_database_engine(settings.database_url_for("messenger"))
    upgrade(engine, "messenger")
    routing = routing_service(settings, engine)
    routing.import_plan(write_plan(root / "plan.csv"))
    routing.import_ports(write_ports(root / "ports.csv"))
    engine.dispose()
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    gateway_app = stage.prepare_gateway(stage.gateway_settings(root, alfa, ports[alfa.key]),
                                        alfa, messenger_url, organizer_key(settings))
    gateway = await stage.serve(alfa.key, gateway_app, ports[alfa.key])
    messenger = await stage.serve("messenger", stage.messenger_app(settings), messenger_port)

    async def stop() -> None:
        for running in (messenger, gateway):
            if not running.task.done():
                await running.stop()

    facts = {"messenger_url": messenger.url, "gateway_url": gateway.url, "token": api_token,
             "sms": str(root / "sms.jsonl"), "pid": os.getpid()}
    return facts, stop


async def serve_forever(root: Path, subscribers: int) -> None:
    """The child process: start the servers, print their facts, run until stdin closes."""
    facts, stop = await start_servers(root, subscribers)
    print("READY " + json.dumps(facts), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await stop()


# --- the load ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Timing:
    account: str
    put: float
    confirm: float
    wait: float
    total: float
    state: str
    polls: int


async def identify(client: httpx2.AsyncClient, sms: Path, account: str, number: str,
                   poll: float) -> Timing:
    from numident.messenger.sms import last_code_in_file

    started = time.perf_counter()
    response = await client.put(f"/messenger/v1/accounts/{account}/phone-number",
                                json={"phoneNumber": number})
    response.raise_for_status()
    put = time.perf_counter()
    code = last_code_in_file(sms, number)
    if code is None:
        raise RuntimeError(f"no SMS code for {number}")
    response = await client.post(f"/messenger/v1/accounts/{account}/phone-number/confirm",
                                 json={"code": code})
    response.raise_for_status()
    confirmed = time.perf_counter()
    state, polls = str(response.json()["state"]), 0
    while state not in FINAL:
        await asyncio.sleep(poll)
        response = await client.get(f"/messenger/v1/accounts/{account}")
        response.raise_for_status()
        state, polls = str(response.json()["state"]), polls + 1
        if time.perf_counter() - started > 60:
            break
    done = time.perf_counter()
    return Timing(account, put - started, confirmed - put, done - confirmed, done - started,
                  state, polls)


async def load(url: str, token: str, sms: Path, jobs: list[tuple[str, str]], concurrency: int,
               poll: float) -> tuple[list[Timing], float]:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    timings: list[Timing] = []
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, timeout=30, limits=limits,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def worker() -> None:
            while not queue.empty():
                account, number = queue.get_nowait()
                timings.append(await identify(client, sms, account, number, poll))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return timings, seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(args: argparse.Namespace, timings: list[Timing], seconds: float,
           cpu: float | None) -> None:
    states: dict[str, int] = {}
    for t in timings:
        states[t.state] = states.get(t.state, 0) + 1
    ok = [t for t in timings if t.state == "identified"]
    print()
    print(f"== exchange benchmark: {len(timings)} identifications, concurrency "
          f"{args.concurrency}, servers {args.servers}, poll every {args.poll * 1000:.0f} ms ==")
    print("load average (1/5/15 min) at the end: "
          + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs")
    print(f"outcomes                  {states}")
    print(f"throughput                {len(ok) / seconds:8.1f} identifications/s "
          f"({len(ok)} identified in {seconds:.2f} s)")
    if not ok:
        return

    def line(name: str, values: list[float]) -> str:
        return (f"{name:<26}p50 {quantile(values, 0.5) * 1000:7.1f} ms   "
                f"p90 {quantile(values, 0.9) * 1000:7.1f} ms   "
                f"p99 {quantile(values, 0.99) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
                f"   mean {statistics.fmean(values) * 1000:7.1f} ms")

    print(line("PUT -> identified", [t.total for t in ok]))
    print(line("  PUT phone-number", [t.put for t in ok]))
    print(line("  POST confirm", [t.confirm for t in ok]))
    print(line("  confirm -> identified", [t.wait for t in ok]))
    print(f"  GET polls per identification: mean {statistics.fmean(t.polls for t in ok):.1f}")
    if cpu is not None:
        print(f"server process CPU        {cpu:8.2f} s = {cpu / len(timings) * 1000:.1f} ms "
              f"per identification ({cpu / seconds:.0%} of one core)")


async def run_inprocess(args: argparse.Namespace, root: Path) -> None:
    facts, stop = await start_servers(root, args.warmup + args.accounts)
    try:
        await measure(args, facts, None)
    finally:
        await stop()


async def measure(args: argparse.Namespace, facts: dict[str, Any], pid: int | None) -> None:
    sms = Path(facts["sms"])
    jobs = [(f"bench-{i:06d}", NUMBER.format(i)) for i in range(args.warmup + args.accounts)]
    if args.warmup:
        warm, _ = await load(facts["messenger_url"], facts["token"], sms, jobs[:args.warmup],
                             min(args.concurrency, args.warmup), args.poll)
        print(f"warm-up: {len(warm)} identifications, "
              f"{sum(t.state == 'identified' for t in warm)} identified")
    before = cpu_seconds(pid) if pid is not None else None
    timings, seconds = await load(facts["messenger_url"], facts["token"], sms,
                                  jobs[args.warmup:], args.concurrency, args.poll)
    cpu = cpu_seconds(pid) - before if pid is not None and before is not None else None
    report(args, timings, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.02, help="GET interval, seconds")
    parser.add_argument("--servers", choices=("process", "inprocess"), default="process")
    parser.add_argument("--serve", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--subscribers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.install()
        asyncio.run(serve_forever(Path(args.serve), args.subscribers))
        return
    with tempfile.TemporaryDirectory(prefix="numident-bench-exchange-") as temp:
        root = Path(temp)
        if args.servers == "inprocess":
            asyncio.run(run_inprocess(args, root))
            return
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(root), "--subscribers",
             str(args.warmup + args.accounts)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        try:
            assert child.stdout is not None
            facts = None
            for line in child.stdout:
                if line.startswith("READY "):
                    facts = json.loads(line.removeprefix("READY "))
                    break
            if facts is None:
                raise SystemExit(f"the servers did not start ({child.wait()})")
            # The servers go on logging a line per request to this pipe: it must be drained,
            # or once its buffer is full their next log line blocks them, and every request.
            threading.Thread(target=collections.deque, args=(child.stdout, 0),
                             daemon=True).start()
            asyncio.run(measure(args, facts, int(facts["pid"])))
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


if __name__ == "__main__":
    main()
