"""Benchmark: fill N notices into an outbox and dispatch them to a local HTTP receiver.

    .venv/bin/python bench/bench_dispatch.py                     # SQLite, in-process dispatcher
    .venv/bin/python bench/bench_dispatch.py --db postgresql     # a fresh PostgreSQL database
    .venv/bin/python bench/bench_dispatch.py --mode nats         # relay + JetStream worker

The receiver is uvicorn in a child process on 127.0.0.1 (so it does not share the GIL with the
dispatcher); it counts distinct Idempotency-Keys, which checks that every notice arrived.
Notices are signed with an Ed25519 key as the gateway signs them (RFC 9421, ``NoticeSigner``).

The baseline is the receiver's own limit: ``wrk`` (C, one thread, the same number of
keep-alive connections) posting a notice's exact signed request (body and headers, a fresh
Idempotency-Key each) to the same receiver for ``--baseline-seconds``, with the receiver's CPU
beside it (near one core: the receiver is the limit). The bare httpx2 client's rate is
printed too, as the ceiling of any Python sender on one event loop.
Prints figures; never fails on time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from scratch import postgres_database
from sqlalchemy import MetaData

from numident.client.keys import generate_key
from numident.client.signatures import NoticeSigner
from numident.core.clock import SystemClock
from numident.outbox import Dispatcher, OutboxMessage, RetryPolicy, SqlOutbox, outbox_table
from numident.outbox.http_sender import HttpSender
from numident.storage.database import create_database_engine

NATS_URL = os.environ.get("NUMIDENT_TEST_NATS_URL", "nats://127.0.0.1:4222")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_seen: set[bytes] = set()


async def receiver_app(scope: Scope, receive: Receive, send: Send) -> None:
    """POST: remember the Idempotency-Key, answer 204. GET: the number of distinct keys."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["method"] == "POST":
        _seen.update(v for k, v in scope["headers"] if k == b"idempotency-key")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = str(len(_seen)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(fd: int) -> None:
    import uvicorn

    uvicorn.run(receiver_app, fd=fd, log_level="warning", access_log=False, lifespan="off")


WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.body = %(body)s
%(headers)s
local sent = 0
request = function()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = "baseline-" .. sent
  return wrk.format()
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def lua_string(value: str | bytes) -> str:
    text = value.decode() if isinstance(value, bytes) else value
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_baseline(message: OutboxMessage, sign: Any, receiver_pid: int, args: Any
                 ) -> tuple[float, float, int]:
    """Posts/s of wrk sending ``message`` as the dispatcher does, the receiver's CPU (cores)
    meanwhile, and wrk's errors."""
    headers = {"Content-Type": message.content_type, "Idempotency-Key": message.id}
    headers.update(sign("POST", message.destination, message.payload, dict(headers)))
    lines = "\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}"
                      for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % {"body": lua_string(message.payload), "headers": lines})
        script.flush()
        before = cpu_seconds(receiver_pid)
        output = subprocess.run(
            ["wrk", "-t", "1", "-c", str(args.concurrency), "-d",
             f"{args.baseline_seconds}s", "-s", script.name, message.destination],
            capture_output=True, text=True, check=True).stdout
    requests, duration_us, failed = (int(v) for v in next(
        ln for ln in output.splitlines() if ln.startswith("RESULT ")).split()[1:])
    seconds = duration_us / 1e6
    return (requests - failed) / seconds, (cpu_seconds(receiver_pid) - before) / seconds, \
        failed


@contextmanager
def receiver() -> Any:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-fd", str(listener.fileno())],
        pass_fds=[listener.fileno()],
    )
    listener.close()
    try:
        yield f"http://127.0.0.1:{port}", child.pid
    finally:
        child.terminate()
        child.wait(timeout=10)


@contextmanager
def database(kind: str) -> Any:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    yield from postgres_database("numident_bench")


def fill(outbox: SqlOutbox, n: int, url: str) -> tuple[float, OutboxMessage]:
    """Write ``n`` notices in one transaction: the seconds it took, and one of them."""
    now = datetime.now(UTC)
    messages = [
        OutboxMessage(id=uuid.uuid4().hex, destination=f"{url}/notices", created_at=now,
                      owner=f"messenger-{i % 7}",
                      payload=b'{"specversion":"1.0","type":"org.numident.notice.'
                              b'contract_terminated","id":"%d","data":{}}' % i)
        for i in range(n)
    ]
    started = time.perf_counter()
    with outbox.engine.begin() as connection:
        for start in range(0, n, 1000):
            outbox.add_many(connection, messages[start:start + 1000])
    return time.perf_counter() - started, messages[0]


async def raw_post_rate(client: httpx2.AsyncClient, url: str, args: Any) -> float:
    """Posts per second of httpx2 alone (no outbox), the ceiling for the dispatcher here."""
    limit = asyncio.Semaphore(args.concurrency)
    count = max(500, args.n // 10)

    async def post(i: int) -> None:
        async with limit:
            await client.post(f"{url}/baseline", content=b"{}",
                              headers={"Idempotency-Key": f"baseline-{i}"})

    started = time.perf_counter()
    await asyncio.gather(*(post(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def dispatch_sql(outbox: SqlOutbox, client: httpx2.AsyncClient, args: Any) -> None:
    dispatcher = Dispatcher(outbox, HttpSender(client, args.sign), SystemClock(), RetryPolicy(),
                            batch_size=args.batch, concurrency=args.concurrency)
    while await dispatcher.run_once() or outbox.counts()["pending"]:
        pass


async def dispatch_nats(outbox: SqlOutbox, client: httpx2.AsyncClient, args: Any) -> None:
    from numident.outbox.nats import connect, ensure_stream
    from numident.outbox.nats_relay import JetStreamDeliveryWorker, JetStreamNoticeRelay

    nc = await connect(NATS_URL)
    js = nc.jetstream()
    unique = uuid.uuid4().hex[:12]
    stream, prefix = f"NUMIDENT_BENCH_{unique}", f"numident-bench-{unique}"
    await ensure_stream(js, stream, [f"{prefix}.>"], work_queue=True)
    clock = SystemClock()
    relay = JetStreamNoticeRelay(outbox, js, clock, prefix=prefix, batch_size=args.batch)
    worker = JetStreamDeliveryWorker(js, outbox, HttpSender(client, args.sign), clock,
                                     stream=stream,
                                     subject=f"{prefix}.>", batch_size=args.batch,
                                     concurrency=args.concurrency)
    delivered = 0

    async def relay_all() -> None:
        while await relay.run_once():
            pass

    async def deliver_all() -> None:
        nonlocal delivered
        while delivered < args.n:
            delivered += await worker.run_once(wait=1.0)

    try:
        await asyncio.gather(relay_all(), deliver_all())
    finally:
        await worker.close()
        await js.delete_stream(stream)
        await nc.close()


async def main(args: Any) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the baseline: apt-get install -y wrk")
    args.sign = NoticeSigner(generate_key()).sign
    with database(args.db) as url, receiver() as (receiver_url, receiver_pid):
        engine = create_database_engine(url, pool_size=max(10, args.concurrency // 4))
        metadata = MetaData()
        table = outbox_table(metadata)
        metadata.create_all(engine)
        outbox = SqlOutbox(engine, table)
        fill_seconds, sample = fill(outbox, args.n, receiver_url)
        limits = httpx2.Limits(max_connections=args.concurrency,
                              max_keepalive_connections=args.concurrency)
        async with httpx2.AsyncClient(timeout=10, limits=limits) as client:
            for _ in range(100):  # wait for the receiver to accept connections
                try:
                    await client.get(f"{receiver_url}/count")
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.05)
            ceiling = await raw_post_rate(client, receiver_url, args)
            baseline, receiver_cpu, baseline_errors = wrk_baseline(sample, args.sign,
                                                                   receiver_pid, args)
            before = int((await client.get(f"{receiver_url}/count")).text)
            receiver_before, own_before = cpu_seconds(receiver_pid), time.process_time()
            started = time.perf_counter()
            await (dispatch_nats if args.mode == "nats" else dispatch_sql)(outbox, client, args)
            seconds = time.perf_counter() - started
            own_cpu = (time.process_time() - own_before) / seconds
            receiver_dispatch_cpu = (cpu_seconds(receiver_pid) - receiver_before) / seconds
            # The baselines' keys were counted before the dispatch started.
            received = int((await client.get(f"{receiver_url}/count")).text) - before
        counts = outbox.counts()
        engine.dispose()
    print(f"db={args.db} mode={args.mode} n={args.n} batch={args.batch} "
          f"concurrency={args.concurrency}")
    print(f"  fill:     {fill_seconds:6.2f} s  {args.n / fill_seconds:9.0f} notices/s "
          "(one transaction)")
    rate = args.n / seconds
    print(f"  dispatch: {seconds:6.2f} s  {rate:9.0f} notices/s delivered, signed "
          f"(dispatcher CPU {own_cpu:.2f} cores, receiver {receiver_dispatch_cpu:.2f})")
    print(f"  receiver: {baseline:9.0f} posts/s from wrk, the same signed request, "
          f"{args.concurrency} connections (receiver CPU {receiver_cpu:.2f} cores, "
          f"{baseline_errors} errors)")
    print(f"  httpx2:   {ceiling:9.0f} posts/s from bare httpx2 at the same concurrency")
    print(f"ratio dispatch/receiver limit: {rate / baseline:.2f}; dispatch/bare httpx2: "
          f"{rate / ceiling:.2f}")
    print(f"  receiver saw {received} distinct notices; outbox {counts}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--mode", choices=["dispatcher", "nats"], default="dispatcher")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--baseline-seconds", type=int, default=5,
                        help="how long wrk measures the receiver")
    parser.add_argument("--serve-fd", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_fd is not None:
        serve(arguments.serve_fd)
    else:
        asyncio.run(main(arguments))
