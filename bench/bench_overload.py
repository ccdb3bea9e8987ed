"""Benchmark: a deferred gateway driven at ten times its measured capacity.

    .venv/bin/python bench/bench_overload.py                     # SQLite, 40 s of overload
    .venv/bin/python bench/bench_overload.py --db postgresql
    .venv/bin/python bench/bench_overload.py --duration 60 --factor 10 --check-seconds 0.2

What runs: the real gateway (``numident operator serve``, one process) in deferred mode with an
artificial registry check of ``--check-seconds`` and ``--workers`` parallel checks, so that its
capacity is small, and an answer deadline shortened to ``--deadline`` seconds
(``operator.answer_deadline_seconds``) so that the 20-minute rule is at work within the run.

1. Capacity: ``--probe`` requests in one batch; capacity = requests / time until the last of
   them is answered (read from the database).
2. Overload: single requests (fresh numbers and codes, open loop) at ``--factor`` times that
   capacity for ``--duration`` seconds, at most ``--concurrency`` in flight.
3. Drain probe: as the overload stops, a batch of ``--drain-batch-seconds`` of capacity, which
   does not fit the full queue yet, is sent again every 0.25 s until accepted.
4. Drain: wait until nothing is pending, then read every request's outcome from the database.

Printed: answers later than answerDue (goal 0) and requests expired; accepted throughput and
in-time answers per second during the overload against the capacity (goal >= 90%); and for
the refused requests, Retry-After against the real wait, i.e. the time until the gateway next
accepted a request (goal within 2x; Retry-After is whole seconds, so a real wait under one
second is compared as one second), and the drain probe's Retry-After against the time its
batch took to be accepted. Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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
from scratch import fill_subscribers, free_port, scratch_database
from sqlalchemy import Engine, select

ORGANIZER = "bench"


@dataclass
class Sent:
    at: float
    """Seconds since the overload started, when the request was sent."""
    status: int
    retry_after: int | None = None
    request_id: str | None = None


def database(kind: str, directory: Path) -> AbstractContextManager[str]:
    return scratch_database(kind, directory / "operator.db", "numident_bench_overload")


def prepare(url: str, numbers: int) -> tuple[Engine, Any]:
    """Schema, ``numbers`` active subscribers, the organizer; the engine and its key."""
    from numident.client.keys import generate_key
    from numident.operator import organizers
    from numident.storage.database import create_database_engine
    from numident.storage.migrate import upgrade

    engine = create_database_engine(url)
    upgrade(engine, "operator")
    now = datetime.now(UTC)
    fill_subscribers(engine, numbers, activated=now, now=now)
    key = generate_key()
    organizers.add_organizer(engine, ORGANIZER, "http://127.0.0.1:9/notices",
                             json.dumps(key.public_jwk()), now)
    return engine, key


@contextmanager
def gateway(env: dict[str, str], port: int) -> Iterator[str]:
    command = [str(Path(sys.executable).parent / "numident"), "operator", "serve",
               "--host", "127.0.0.1", "--port", str(port)]
    child = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                raise SystemExit(f"gateway exited with {child.returncode}")
            try:
                if httpx2.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gateway did not start")
            time.sleep(0.1)
        yield base
    finally:
        child.terminate()
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def obtain_token(key: Any, base: str) -> str:
    from numident.client.assertions import make_client_assertion, token_request_form
    from numident.core.clock import SystemClock

    assertion = make_client_assertion(key, ORGANIZER, f"{base}/oauth2/token", SystemClock())
    response = httpx2.post(f"{base}/oauth2/token", data=token_request_form(assertion))
    response.raise_for_status()
    return str(response.json()["access_token"])


def outcomes(engine: Engine) -> list[Any]:
    from numident.operator.tables import identification_requests as requests

    with engine.connect() as conn:
        return list(conn.execute(select(requests.c.request_id, requests.c.status,
                                        requests.c.received_at, requests.c.answered_at,
                                        requests.c.answer_due)))


def wait_drained(engine: Engine, limit: float) -> bool:
    ends = time.monotonic() + limit
    while time.monotonic() < ends:
        if not any(r.status == "pending" for r in outcomes(engine)):
            return True
        time.sleep(0.25)
    return False


def measure_capacity(engine: Engine, base: str, headers: dict[str, str], probe: int,
                     deadline: float) -> float:
    body = {"requests": [{"phoneNumber": f"+7916{i:07d}", "identificationCode": f"probe-{i}"}
                         for i in range(probe)]}
    started = datetime.now(UTC)
    response = httpx2.post(f"{base}/identification/v1/requests/batch", headers=headers,
                          json=body, timeout=60)
    if response.status_code != 200:
        raise SystemExit(f"the capacity probe was refused: {response.status_code} "
                         f"{response.text}; use a smaller --probe")
    if not wait_drained(engine, 3 * deadline):
        raise SystemExit("the capacity probe was not answered")
    last = max(r.answered_at for r in outcomes(engine) if r.answered_at is not None)
    return probe / (last - started).total_seconds()


async def overload(base: str, headers: dict[str, str], rate: float, seconds: float,
                   concurrency: int, first_number: int) -> list[Sent]:
    """Open loop: request i is sent at i / rate seconds (later only when the client lags)."""
    sent: list[Sent] = []
    limit = asyncio.Semaphore(concurrency)
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=60) as client:
        origin = time.monotonic()

        async def one(n: int) -> None:
            async with limit:
                at = time.monotonic() - origin
                response = await client.post("/identification/v1/requests", json={
                    "phoneNumber": f"+7916{first_number + n:07d}",
                    "identificationCode": f"load-{n}"})
            record = Sent(at, response.status_code)
            if response.status_code == 202:
                record.request_id = response.json()["requestId"]
            elif response.status_code == 429:
                record.retry_after = int(response.headers["retry-after"])
            sent.append(record)

        tasks: list[asyncio.Task[None]] = []
        total = int(rate * seconds)
        for n in range(total):
            delay = origin + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return sorted(sent, key=lambda s: s.at)


def drain_probe(base: str, headers: dict[str, str], size: int, first_number: int
                ) -> tuple[int, float] | None:
    """Right after the overload, a batch of ``size`` that does not fit yet: (Retry-After, real
    wait), the real wait being the time until the same batch, sent every 0.25 s, is accepted."""
    body = {"requests": [{"phoneNumber": f"+7916{first_number + i:07d}",
                          "identificationCode": f"drain-{i}"} for i in range(size)]}
    started = time.monotonic()
    advised: int | None = None
    with httpx2.Client(base_url=base, headers=headers, timeout=60) as client:
        while time.monotonic() - started < 120:
            response = client.post("/identification/v1/requests/batch", json=body)
            if response.status_code == 200:
                return None if advised is None else (advised, time.monotonic() - started)
            if advised is None:
                advised = int(response.headers["retry-after"])
            time.sleep(0.25)
    return None


def real_waits(sent: list[Sent]) -> list[tuple[int, float]]:
    """(Retry-After, seconds until the next accepted request) of each refused request."""
    accepted = [s.at for s in sent if s.status == 202]
    pairs: list[tuple[int, float]] = []
    index = 0
    for s in sent:
        if s.status != 429 or s.retry_after is None:
            continue
        while index < len(accepted) and accepted[index] <= s.at:
            index += 1
        if index < len(accepted):  # refused after the last acceptance: no wait was seen
            pairs.append((s.retry_after, accepted[index] - s.at))
    return pairs


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="numident-bench-overload-") as tmp:
        directory = Path(tmp)
        with database(args.db, directory) as url:
            # Fresh numbers for every request, at twice the nominal capacity's overload.
            nominal = args.workers / args.check_seconds
            numbers = args.probe + int(2 * args.factor * nominal * args.duration) + 1000
            engine, key = prepare(url, numbers)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            env = {**os.environ, "NUMIDENT_HOME": str(directory / "home"),
                   "NUMIDENT_DATABASE_URL": url, "NUMIDENT_OPERATOR__PUBLIC_URL": base,
                   "NUMIDENT_LOG_LEVEL": "WARNING", "NUMIDENT_OPERATOR__DEFERRED": "true",
                   "NUMIDENT_OPERATOR__CHECK_SECONDS": str(args.check_seconds),
                   "NUMIDENT_OPERATOR__WORKERS": str(args.workers),
                   "NUMIDENT_OPERATOR__ANSWER_DEADLINE_SECONDS": str(args.deadline),
                   "NUMIDENT_OPERATOR__LEASE_SECONDS": str(max(10.0, args.deadline))}
            with gateway(env, port) as base:
                headers = {"Authorization": f"Bearer {obtain_token(key, base)}"}
                capacity = measure_capacity(engine, base, headers, args.probe, args.deadline)
                rate = capacity * args.factor
                print(f"db={args.db} check={args.check_seconds}s workers={args.workers} "
                      f"deadline={args.deadline:g}s (answerDue = receipt + deadline)")
                print(f"capacity: {capacity:.1f} answers/s (batch of {args.probe}); overload "
                      f"{args.factor:g}x = {rate:.0f} req/s for {args.duration:g} s, at most "
                      f"{args.concurrency} in flight")
                before = {r.request_id for r in outcomes(engine)}
                window_start = datetime.now(UTC)
                sent = asyncio.run(overload(base, headers, rate, args.duration,
                                            args.concurrency, args.probe))
                window_end = datetime.now(UTC)
                batch = max(1, min(1000, round(args.drain_batch_seconds * capacity)))
                probe = drain_probe(base, headers, batch, args.probe + len(sent) + 1)
                drained = wait_drained(engine, 3 * args.deadline)
            rows = [r for r in outcomes(engine) if r.request_id not in before]
            engine.dispose()

    offered = len(sent)
    elapsed = max(s.at for s in sent) if sent else args.duration
    accepted = sum(s.status == 202 for s in sent)
    refused = [s for s in sent if s.status == 429]
    others = offered - accepted - len(refused)
    answered = [r for r in rows if r.status == "answered"]
    late = sum(r.answered_at > r.answer_due for r in answered)
    expired = sum(r.status == "expired" for r in rows)
    pending = sum(r.status == "pending" for r in rows)
    in_window = sum(window_start <= r.answered_at <= window_end for r in answered)
    window = (window_end - window_start).total_seconds()
    print(f"offered {offered} requests in {elapsed:.1f} s ({offered / elapsed:.0f}/s): "
          f"accepted {accepted}, refused 429 {len(refused)}, other {others}")
    print(f"answers later than answerDue: {late} (goal 0); expired: {expired}; "
          f"still pending after the drain: {pending}{'' if drained else ' (drain timed out)'}")
    print(f"accepted throughput: {accepted / elapsed:.1f}/s = "
          f"{accepted / elapsed / capacity:.0%} of capacity; answered in time during the "
          f"overload: {in_window / window:.1f}/s = {in_window / window / capacity:.0%} of "
          "capacity (goal >= 90%)")
    pairs = real_waits(sent)
    if pairs:
        ratios = [r / max(1.0, wait) for r, wait in pairs]
        within = sum(0.5 <= q <= 2 for q in ratios)
        advised = [r for r, _ in pairs]
        waits = [w for _, w in pairs]
        print(f"refused: Retry-After median {statistics.median(advised):g} s (max "
              f"{max(advised)} s); real wait until the next acceptance median "
              f"{statistics.median(waits):.2f} s (max {max(waits):.2f} s)")
        print(f"Retry-After / max(1 s, real wait): median {statistics.median(ratios):.2f}, "
              f"within 2x for {within} of {len(pairs)} = {within / len(pairs):.0%} "
              "(goal: within 2x)")
    else:
        print("refused: none with a later acceptance to compare with")
    if probe is None:
        print(f"drain probe: the batch of {batch} was accepted at once")
    else:
        print(f"drain probe (a batch of {batch} = {args.drain_batch_seconds:g} s of work, sent "
              f"as the overload stopped): Retry-After {probe[0]} s, accepted after "
              f"{probe[1]:.1f} s, ratio {probe[0] / probe[1]:.2f} (goal within 2x)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--check-seconds", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=20.0,
                        help="answer deadline of the gateway, seconds (the rule's is 1200)")
    parser.add_argument("--probe", type=int, default=60,
                        help="requests of the capacity measurement")
    parser.add_argument("--factor", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=40.0,
                        help="seconds of overload (at most 120)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--drain-batch-seconds", type=float, default=5.0,
                        help="size of the drain probe's batch, in seconds of capacity")
    args = parser.parse_args(argv)
    args.duration = min(args.duration, 120.0)
    return args


if __name__ == "__main__":
    main(parse())
