"""Benchmark: bulk first identification (``numident messenger identify-all``) over three gateways.

    .venv/bin/python bench/bench_identify_all.py                      # 90,000 accounts
    .venv/bin/python bench/bench_identify_all.py --accounts 1000000   # the national-scale run
    .venv/bin/python bench/bench_identify_all.py --concurrency 8 --batch-size 500
    .venv/bin/python bench/bench_identify_all.py --profile /tmp/bulk.prof  # cProfile the command

What runs (all on 127.0.0.1, in a temporary folder, SQLite files): the demo's three operators,
each a real ``numident operator serve`` process (immediate answers) with ``accounts / 3`` active
subscribers of its DEF range imported by ``numident operator import-subscribers``; the demo's
numbering plan loaded by ``numident messenger import-plan``; two organizers registered at every
gateway: ``baseline`` and ``chat``.

What it measures, in one run:

* **gateways**: the gateways' own batch throughput for the same numbers: a plain asyncio +
  httpx2 client (organizer ``baseline``, its own random codes of the messenger's kind) posts
  every number in batches of ``--batch-size`` to its gateway with ``--concurrency`` batches in
  flight per gateway, all three gateways at once, and waits for each answer. Nothing else
  runs.
* **identify-all**: ``numident messenger identify-all FILE`` (organizer ``chat``) as a process
  over the same accounts with the same batch size and concurrency, end to end: reading and
  checking the file, routing, storing, sending, recording the answers and the accounts, the
  summary and the CSV of accounts not identified. Its peak RSS is sampled with psutil.

Each phase ends once the gateways have also settled: their background work (the audit sealer
chaining the entries a phase wrote) is done, so that neither phase is credited with work it
left to the next; the settling time and CPU are counted in the phase (the set-up's are in
neither).

Printed: numbers/s for both, the ratio identify-all / gateways (goal >= 0.8: the messenger side
is never the bottleneck), the CPU time per number of each side (the three gateway processes
during the baseline and again while identify-all runs; identify-all's process, start-up
included), identify-all's peak RSS, and
the load average (wall-clock figures compare only on a quiet machine; the CPU figures hold on a
shared one). Never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import psutil
from scratch import free_port

NUMIDENT = [sys.executable, "-m", "numident"]
BASELINE_TIMEOUT = 120.0
"""Seconds the baseline client waits for a batch's answer."""


def cli(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run([*NUMIDENT, *args], env={**os.environ, **env}, capture_output=True,
                            text=True, check=False, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"numident {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def start_gateway(root: Path, key: str, subscribers: list[str], organizers: dict[str, Path]
                  ) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"NUMIDENT_HOME": str(root / key), "NUMIDENT_OPERATOR__PUBLIC_URL": url,
           "NUMIDENT_LOG_LEVEL": "WARNING"}
    export = root / f"{key}.csv"
    with export.open("w", encoding="utf-8") as handle:
        handle.write("phone_number,contract_id,status,activated_at\n")
        handle.writelines(f"{n},{key}-{i},active,2024-01-01\n" for i, n in enumerate(subscribers))
    cli(["operator", "migrate"], env)
    cli(["operator", "import-subscribers", str(export)], env)
    for name, jwk in organizers.items():
        cli(["operator", "add-organizer", name, "--notice-url", "http://127.0.0.1:9/notices",
             "--public-key", str(jwk)], env)
    (root / f"{key}.jwk").write_text(cli(["operator", "public-key"], env))
    log = (root / f"{key}.log").open("ab")
    process = subprocess.Popen([*NUMIDENT, "operator", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env={**os.environ, **env},
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url, env
        except httpx2.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"gateway {key} did not start")


async def baseline(gateways: list[tuple[str, list[str]]], key_file: Path, batch_size: int,
                   concurrency: int) -> float:
    """Seconds the gateways take to answer every number in batches (organizer ``baseline``)."""
    from numident.client.assertions import make_client_assertion, token_request_form
    from numident.client.keys import load_private_key
    from numident.core.accounts import new_identification_code
    from numident.core.clock import SystemClock

    key = load_private_key(key_file)
    clock = SystemClock()

    async def one_gateway(url: str, numbers: list[str]) -> None:
        limits = httpx2.Limits(max_connections=concurrency)
        async with httpx2.AsyncClient(base_url=url, limits=limits,
                                      timeout=BASELINE_TIMEOUT) as http:
            assertion = make_client_assertion(key, "baseline", f"{url}/oauth2/token", clock)
            token = (await http.post("/oauth2/token", data=token_request_form(
                assertion, "identification"))).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            # Random codes, as the messenger gives: codes in the numbers' order would fill the
            # gateway's code indexes in order, a cheaper write than identify-all's.
            coded = [(n, new_identification_code()) for n in numbers]
            batches = [coded[i:i + batch_size] for i in range(0, len(coded), batch_size)]
            queue: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()
            for batch in batches:
                queue.put_nowait(batch)

            async def worker() -> None:
                while not queue.empty():
                    batch = queue.get_nowait()
                    response = await http.post("/identification/v1/requests/batch", json={
                        "requests": [{"phoneNumber": n, "identificationCode": code}
                                     for n, code in batch]}, headers=headers)
                    response.raise_for_status()

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    started = time.perf_counter()
    await asyncio.gather(*(one_gateway(url, numbers) for url, numbers in gateways))
    return time.perf_counter() - started


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """User and system CPU seconds the running ``processes`` have used so far."""
    return sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in processes)


SETTLED_SHARE = 0.03
"""The gateways have settled when, together, they use less than this share of a core."""
SETTLE_LIMIT = 300.0


def settle(processes: list[subprocess.Popen[bytes]], window: float = 0.5) -> tuple[float, float]:
    """Wait until the gateways' background work (the audit sealer chaining what a phase
    wrote, checkpoints) is done; the seconds waited and the CPU seconds they used meanwhile,
    which belong to the phase that left the work (at most :data:`SETTLE_LIMIT` seconds)."""
    began, cpu = time.perf_counter(), cpu_seconds(processes)
    while time.perf_counter() - began < SETTLE_LIMIT:
        before = cpu_seconds(processes)
        time.sleep(window)
        if cpu_seconds(processes) - before < SETTLED_SHARE * window:
            break
    return time.perf_counter() - began - window, cpu_seconds(processes) - cpu


def sample_rss(pid: int, peak: list[int], stop: threading.Event) -> None:
    try:
        process = psutil.Process(pid)
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=90_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--request-timeout", type=float, default=BASELINE_TIMEOUT,
                        help="identify-all's messenger.request_timeout_seconds (default: the "
                        "baseline client's, so that both wait as long for a batch)")
    parser.add_argument("--profile", type=Path, help="run identify-all under cProfile, write "
                        "its stats here and print the top functions")
    args = parser.parse_args()

    from numident.client.keys import generate_key
    from numident.demo.data import OPERATORS, write_plan

    per_gateway = args.accounts // len(OPERATORS)
    with tempfile.TemporaryDirectory(prefix="numident-bulk-") as tmp:
        root = Path(tmp)
        messenger_env = {"NUMIDENT_HOME": str(root / "messenger"),
                         "NUMIDENT_LOG_LEVEL": "WARNING"}
        (root / "chat.jwk").write_text(cli(["messenger", "public-key"], messenger_env))
        baseline_key = generate_key()
        (root / "baseline.key").write_bytes(baseline_key.private_pem())
        (root / "baseline.jwk").write_text(json.dumps(baseline_key.public_jwk()))
        organizers = {"chat": root / "chat.jwk", "baseline": root / "baseline.jwk"}
        started: list[tuple[subprocess.Popen[bytes], str, list[str], Any]] = []
        setup = time.perf_counter()
        try:
            for operator in OPERATORS:
                numbers = [f"+7{operator.def_code}{i:07d}" for i in range(per_gateway)]
                process, url, _ = start_gateway(root, operator.key, numbers, organizers)
                started.append((process, url, numbers, operator))
            config = root / "messenger.toml"
            config.write_text('[messenger]\norganizer = "chat"\n'
                              f"request_timeout_seconds = {args.request_timeout}\n" + "".join(
                f'[[messenger.operators]]\ninn = "{op.inn}"\nname = "{op.key}"\n'
                f'gateway_url = "{url}"\nnotice_public_key = "{root / (op.key + ".jwk")}"\n'
                for _, url, _, op in started), encoding="utf-8")
            cli(["messenger", "migrate", "--config", str(config)], messenger_env)
            cli(["messenger", "import-plan", str(write_plan(root / "plan.csv")), "--config",
                 str(config)], messenger_env)
            users = root / "users.csv"
            with users.open("w", encoding="utf-8") as handle:
                handle.write("account_id,phone_number,possession_proven_at\n")
                for _, _, numbers, _ in started:
                    handle.writelines(f"u{n[1:]},{n},2026-11-30T10:00:00Z\n" for n in numbers)
            print(f"setup: {len(OPERATORS)} gateways x {per_gateway:,} subscribers in "
                  f"{time.perf_counter() - setup:.1f} s")

            gateways = [process for process, _, _, _ in started]
            settle(gateways)  # what the set-up left (the imports' audit entries) is not counted
            gateway_cpu = cpu_seconds(gateways)
            seconds = asyncio.run(baseline([(url, numbers) for _, url, numbers, _ in started],
                                           root / "baseline.key", args.batch_size,
                                           args.concurrency))
            gateway_cpu = cpu_seconds(gateways) - gateway_cpu
            seconds_settling, cpu_settling = settle(gateways)
            seconds += seconds_settling
            gateway_cpu += cpu_settling
            total = per_gateway * len(OPERATORS)
            gateway_rate = total / seconds

            profiled = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            command = [sys.executable, *profiled, "-m", "numident", "messenger",
                       "identify-all", str(users), "--config", str(config),
                       "--batch-size", str(args.batch_size), "--concurrency",
                       str(args.concurrency), "--unidentified", str(root / "left.csv")]
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            serving_cpu = cpu_seconds(gateways)
            began = time.perf_counter()
            run = subprocess.Popen(command, env={**os.environ, **messenger_env},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            peak, stop = [0], threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(run.pid, peak, stop))
            sampler.start()
            output, _ = run.communicate(timeout=3600)
            elapsed = time.perf_counter() - began
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            serving_cpu = cpu_seconds(gateways) - serving_cpu
            bulk_settling, cpu_settling = settle(gateways)
            elapsed += bulk_settling
            serving_cpu += cpu_settling
            bulk_cpu = (after.ru_utime + after.ru_stime
                        - children.ru_utime - children.ru_stime)
            stop.set()
            sampler.join()
            if run.returncode != 0:
                raise SystemExit(f"identify-all failed ({run.returncode}):\n{output.decode()}")
            bulk_rate = total / elapsed
            print(output.decode().rstrip())
            print(f"\naccounts: {total:,} over {len(OPERATORS)} gateways, batches of "
                  f"{args.batch_size}, {args.concurrency} in flight per gateway")
            print(f"gateways alone (batch endpoint):  {gateway_rate:10,.0f} numbers/s "
                  f"({seconds:.1f} s, of which {seconds_settling:.1f} s settling)")
            print(f"identify-all end to end:          {bulk_rate:10,.0f} numbers/s "
                  f"({elapsed:.1f} s, of which {bulk_settling:.1f} s settling)")
            print(f"ratio identify-all / gateways:    {bulk_rate / gateway_rate:10.2f}"
                  "   (goal >= 0.8)")
            print(f"CPU per number, gateways alone:   {gateway_cpu / total * 1e6:10,.0f} us "
                  "(the three gateway processes, the baseline and its settling)")
            print(f"CPU per number, identify-all:     {bulk_cpu / total * 1e6:10,.0f} us "
                  "(its own process, start-up included)")
            print(f"CPU per number, gateways serving it: {serving_cpu / total * 1e6:7,.0f} us "
                  "(the three gateway processes, identify-all and its settling)")
            print(f"identify-all peak RSS:            {peak[0] / 2**20:10,.0f} MiB")
            print(f"load average:                     {os.getloadavg()[0]:10.2f}")
            if args.profile:
                import pstats

                pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(30)
        finally:
            for process, _, _, _ in started:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
