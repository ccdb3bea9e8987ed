"""Benchmark: end-to-end identifications per second, messenger service -> operator gateway.

    .venv/bin/python bench/bench_exchange.py                       # 200 accounts, 16 at a time
    .venv/bin/python bench/bench_exchange.py --accounts 1000 --concurrency 32
    .venv/bin/python bench/bench_exchange.py --servers processes   # a process per server
    .venv/bin/python bench/bench_exchange.py --servers inprocess   # servers on the client's loop
    .venv/bin/python bench/bench_exchange.py --profile /tmp/exchange.folded   # py-spy them

What runs:

* servers (``numident.demo.stage`` helpers, as ``numident demo`` starts them): one operator
  gateway (the demo's Alfa, immediate answers, ``--accounts`` active subscribers +79166NNNNNNN
  imported) and one messenger service, real uvicorn servers on 127.0.0.1, SQLite files in a
  temporary folder, SMS by the file sender, logs configured as ``numident ... serve``
  configures them (the settings' level and format). The numbering plan and the port file are
  the demo's (loaded with ``RoutingService`` before the servers start), keys are exchanged and
  the organizer registered at the gateway exactly as in the demo. By default both servers
  share one event loop in a child process (``--servers process``, uvloop), as the demo runs
  them, so that the load generator does not share their interpreter; ``--servers processes``
  runs each in a child process of its own, as two organisations run them in production;
  ``--servers inprocess`` runs everything on the load generator's loop.
* load: ``--concurrency`` client tasks (httpx2, keep-alive) each take accounts from a queue; one
  identification = ``PUT /messenger/v1/accounts/{id}/phone-number``, the code read from the SMS
  file (``last_code_in_file``), ``POST .../phone-number/confirm``, then ``GET`` every
  ``--poll`` seconds until the state is final (``identified`` expected). ``--warmup``
  identifications (other accounts, other numbers) run first and are not counted.

Reported: identifications/second over the measured run, latency of the full identification
(PUT sent -> ``identified`` seen) p50/p90/p99/max, the split PUT / confirm / wait, and the
CPU seconds per identification of each server process (and of both together). The wait
includes up to one ``--poll`` interval of polling delay. ``--profile FILE`` samples the server
process(es) with py-spy during the measured run (the thread holding the GIL, where the Python
CPU goes): folded stacks in FILE, or FILE.gateway and FILE.messenger. Never fails on time
(benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import secrets
import signal
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

SIDES = ("gateway", "messenger")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the servers live, chosen once: every process that runs one of them rebuilds the
    same settings from it (ports, the backend's token, the messenger's possession secret)."""

    root: str
    subscribers: int
    ports: dict[str, int]
    """A port for every operator of the demo (each has an endpoint at the messenger), and
    ``messenger``'s."""
    api_token: str
    secret: str

    @classmethod
    def choose(cls, root: Path, subscribers: int) -> Layout:
        from numident.demo import stage
        from numident.demo.data import OPERATORS

        ports = {name: stage.free_port() for name in [op.key for op in OPERATORS] + ["messenger"]}
        return cls(str(root), subscribers, ports, secrets.token_urlsafe(24),
                   secrets.token_urlsafe(32))

    def save(self) -> Path:
        path = Path(self.root) / "layout.json"
        path.write_text(json.dumps(dataclasses.asdict(self)), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> Layout:
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def settings_of(layout: Layout) -> tuple[Any, Any, Any]:
    """(Alfa with the benchmark's subscribers, the gateway's settings, the messenger's)."""
    from numident.demo import stage
    from numident.demo.data import OPERATORS

    root = Path(layout.root)
    alfa = dataclasses.replace(OPERATORS[0], subscribers=tuple(
        (NUMBER.format(i), "active") for i in range(layout.subscribers)))
    # Every operator of the demo has an endpoint in the messenger's settings (and a key); only
    # Alfa's gateway runs: every number of the benchmark is in Alfa's range.
    keys = stage.gateway_keys(root, {op.key: layout.ports[op.key] for op in OPERATORS})
    # Every account of the load comes from this host into Alfa's one range: the address and
    # range budgets and the circuit would stop it, as they are meant to stop such a burst.
    messenger = stage.messenger_settings(
        root, layout.ports["messenger"], keys, layout.api_token, circuit=False,
        budgets={"per_address": False, "per_range": False, "per_region": False},
        secret=layout.secret)
    gateway = stage.gateway_settings(root, alfa, layout.ports[alfa.key])
    return alfa, gateway, messenger


def prepare(layout: Layout) -> None:
    """What is done once before any server starts: the keys, the messenger's schema, and the
    demo's numbering plan and port file loaded into it."""
    from numident.demo.data import write_plan, write_ports
    from numident.messenger.bootstrap import routing_service
    from numident.messenger.keys import organizer_key
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    _, _, settings = settings_of(layout)
    organizer_key(settings)
    engine = create_database_engine(settings.database_url_for("messenger"))
    upgrade(engine, "messenger")
    routing = routing_service(settings, engine)
    routing.import_plan(write_plan(Path(layout.root) / "plan.csv"))
    routing.import_ports(write_ports(Path(layout.root) / "ports.csv"))
    engine.dispose()


async def start_servers(layout: Layout, sides: tuple[str, ...] = SIDES
                        ) -> tuple[dict[str, Any], Any]:
    """Start the ``sides`` on this loop: one gateway (Alfa) and/or the messenger service;
    (connection facts, stop coroutine fn)."""
    from numident.demo import stage
    from numident.messenger.keys import organizer_key

    alfa, gateway_settings, settings = settings_of(layout)
    messenger_url = f"http://127.0.0.1:{layout.ports['messenger']}"
    running = []
    if "gateway" in sides:
        gateway_app = stage.prepare_gateway(gateway_settings, alfa, messenger_url,
                                            organizer_key(settings))
        running.append(await stage.serve(alfa.key, gateway_app, layout.ports[alfa.key]))
    if "messenger" in sides:
        running.append(await stage.serve("messenger", stage.messenger_app(settings),
                                         layout.ports["messenger"]))

    async def stop() -> None:
        for server in reversed(running):
            if not server.task.done():
                await server.stop()

    facts = {"messenger_url": messenger_url, "token": layout.api_token,
             "sms": str(Path(layout.root) / "sms.jsonl"), "pid": os.getpid()}
    return facts, stop


async def serve_forever(layout: Layout, sides: tuple[str, ...]) -> None:
    """A server process: start the ``sides``, print their facts, run until stdin closes."""
    from numident.logs import configure_logging

    _, _, settings = settings_of(layout)
    # As ``numident ... serve`` does, but to standard output, which the parent drains.
    configure_logging(settings.log_level, settings.log_format, stream=sys.stdout)
    facts, stop = await start_servers(layout, sides)
    print("READY " + json.dumps(facts), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await stop()


class ServerProcess:
    """A child process serving some ``sides`` of a saved layout (uvloop, as a server runs)."""

    def __init__(self, layout_file: Path, sides: tuple[str, ...]) -> None:
        self.sides = sides
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(layout_file), "--sides", ",".join(sides)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        facts = None
        for line in self.child.stdout:
            if line.startswith("READY "):
                facts = json.loads(line.removeprefix("READY "))
                break
        if facts is None:
            raise SystemExit(f"the {'+'.join(sides)} server did not start ({self.child.wait()})")
        self.facts: dict[str, Any] = facts
        # The servers go on logging a line per request to this pipe: it must be drained,
        # or once its buffer is full their next log line blocks them, and every request.
        threading.Thread(target=collections.deque, args=(self.child.stdout, 0),
                         daemon=True).start()

    @property
    def name(self) -> str:
        return "+".join(self.sides)

    @property
    def pid(self) -> int:
        return int(self.facts["pid"])

    def stop(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        try:
            self.child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


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
           cpu: dict[str, float]) -> None:
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
    for name, used in cpu.items():
        print(f"server CPU {name:<18}{used:6.2f} s = {used / len(timings) * 1000:.1f} ms "
              f"per identification ({used / seconds:.0%} of one core)")


async def run_inprocess(args: argparse.Namespace, layout: Layout) -> None:
    facts, stop = await start_servers(layout)
    try:
        await measure(args, facts, {})
    finally:
        await stop()


async def measure(args: argparse.Namespace, facts: dict[str, Any],
                  servers: dict[str, int]) -> None:
    """Run the warm-up, then the measured load; ``servers``: the server processes' pids by
    name, whose CPU is reported (and sampled by py-spy with ``--profile``)."""
    sms = Path(facts["sms"])
    jobs = [(f"bench-{i:06d}", NUMBER.format(i)) for i in range(args.warmup + args.accounts)]
    if args.warmup:
        warm, _ = await load(facts["messenger_url"], facts["token"], sms, jobs[:args.warmup],
                             min(args.concurrency, args.warmup), args.poll)
        print(f"warm-up: {len(warm)} identifications, "
              f"{sum(t.state == 'identified' for t in warm)} identified")
    spies = [profile(args.profile, name, pid, len(servers) > 1)
             for name, pid in servers.items()] if args.profile else []
    before = {name: cpu_seconds(pid) for name, pid in servers.items()}
    timings, seconds = await load(facts["messenger_url"], facts["token"], sms,
                                  jobs[args.warmup:], args.concurrency, args.poll)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in servers.items()}
    for spy in spies:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    if len(cpu) > 1:
        cpu["(both)"] = sum(cpu.values())
    report(args, timings, seconds, cpu)
    for spy in spies:
        print(f"py-spy folded stacks: {spy.args[-1]}")


def profile(path: str, name: str, pid: int, several: bool) -> subprocess.Popen[bytes]:
    """Sample process ``pid`` with py-spy (the thread holding the GIL) until SIGINT; folded
    stacks into ``path`` (``path.NAME`` when ``several`` processes are sampled)."""
    output = f"{path}.{name}" if several else path
    return subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                             str(pid), "--rate", "200", "--gil", "--format", "raw", "--nonblocking",
                             "--output", output], stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.02, help="GET interval, seconds")
    parser.add_argument("--servers", choices=("process", "processes", "inprocess"),
                        default="process", help="process: both servers in one child process; "
                        "processes: one child process each; inprocess: on the load's loop")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy the server process(es) during the measured run: folded "
                        "stacks (FILE.gateway and FILE.messenger with --servers processes)")
    parser.add_argument("--serve", metavar="LAYOUT", help=argparse.SUPPRESS)
    parser.add_argument("--sides", default=",".join(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.install()
        asyncio.run(serve_forever(Layout.load(Path(args.serve)), tuple(args.sides.split(","))))
        return
    if args.profile and args.servers == "inprocess":
        parser.error("--profile samples server processes: not with --servers inprocess")
    with tempfile.TemporaryDirectory(prefix="numident-bench-exchange-") as temp:
        layout = Layout.choose(Path(temp), args.warmup + args.accounts)
        prepare(layout)
        if args.servers == "inprocess":
            asyncio.run(run_inprocess(args, layout))
            return
        groups = [SIDES] if args.servers == "process" else [(side,) for side in SIDES]
        servers: list[ServerProcess] = []
        try:
            for sides in groups:  # the gateway first: it must know the organizer's key
                servers.append(ServerProcess(layout.save(), sides))
            asyncio.run(measure(args, servers[-1].facts,
                                {server.name: server.pid for server in servers}))
        finally:
            for server in reversed(servers):
                server.stop()


if __name__ == "__main__":
    main()
