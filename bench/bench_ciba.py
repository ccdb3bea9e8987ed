"""Benchmark: CIBA flows (bc-authorize, then the token request) against a gateway in process.

    .venv/bin/python bench/bench_ciba.py                   # SQLite, 300 flows
    .venv/bin/python bench/bench_ciba.py --db postgresql   # a fresh PostgreSQL database
    .venv/bin/python bench/bench_ciba.py --flows 1000 --basis consent

Each flow is what a back-end does for a line: ``POST /oauth2/bc-authorize`` with a fresh
``private_key_jwt`` assertion, then ``POST /oauth2/token`` with the CIBA grant; with
``--basis consent`` the subscriber approves on the page in between (the file sender writes
the link). The reference is the client-credentials token request of the same gateway (one
assertion, one token). Requests go through httpx2's ASGI transport, one at a time, so the
figures are the gateway's own cost per flow, without sockets. Prints figures; never fails on
time (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from scratch import postgres_database

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion, token_request_form
from numident.client.keys import generate_key
from numident.config import load_settings
from numident.core.clock import SystemClock
from numident.operator import organizers
from numident.operator.app import create_app
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.consent import last_url_in_file
from numident.operator.registry import import_subscribers

BASE_URL = "http://127.0.0.1:8080"
PURPOSES = {"legitimate_interest": "dpv:FraudPreventionAndDetection",
            "consent": "dpv:IdentityVerification"}
LINES = 1000


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'operator.db'}"
    else:
        yield from postgres_database("numident_bench")


def figures(name: str, seconds: list[float]) -> float:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(seconds) / sum(seconds)
    p50 = statistics.median(ordered)
    print(f"{name:<34} {len(seconds):>6} {rate:>9.1f}/s   p50 {p50 * 1e3:6.2f} ms   "
          f"p99 {p99 * 1e3:6.2f} ms")
    return rate


async def run(url: str, folder: Path, flows: int, basis: str, limit: float) -> None:
    settings = load_settings(None, home=str(folder), database_url=url, operator={
        "public_url": BASE_URL, "ciba": {"purposes": {v: k for k, v in PURPOSES.items()}}})
    app = create_app(settings, background=False)
    engine = app.state.gateway.engine
    export = folder / "subscribers.csv"
    numbers = [f"+7916{i:07d}" for i in range(LINES)]
    export.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
        f"{n},C-{i},active,2024-01-15\n" for i, n in enumerate(numbers)), encoding="utf-8")
    clock = SystemClock()
    import_subscribers(engine, export, now=clock.now(), notice_source=BASE_URL,
                       handlers=lifecycle_handlers())
    key = generate_key()
    organizers.add_organizer(engine, "bank", "https://bank.example/notices",
                             json.dumps(key.public_jwk()), clock.now(),
                             scopes=["sim-swap:check"])
    inbox = folder / "operator" / "ciba-consent.jsonl"

    def authenticated(**form: str) -> dict[str, str]:
        return {**form, "client_assertion_type": ASSERTION_TYPE, "client_assertion":
                make_client_assertion(key, "bank", f"{BASE_URL}/oauth2/token", clock)}

    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                 base_url=BASE_URL) as client:

        async def reference(_: int) -> None:
            assertion = make_client_assertion(key, "bank", f"{BASE_URL}/oauth2/token", clock)
            response = await client.post("/oauth2/token", data=token_request_form(
                assertion, "sim-swap:check"))
            assert response.status_code == 200, response.text

        async def flow(i: int) -> None:
            number = numbers[i % LINES]
            started = await client.post("/oauth2/bc-authorize", data=authenticated(
                login_hint=f"tel:{number}", scope=f"{PURPOSES[basis]} sim-swap:check"))
            assert started.status_code == 200, started.text
            if basis == "consent":
                link = last_url_in_file(inbox, number)
                assert link is not None
                approved = await client.post(link.removeprefix(BASE_URL),
                                             data={"decision": "approve"})
                assert approved.status_code == 200, approved.text
            token = await client.post("/oauth2/token", data=authenticated(
                grant_type="urn:openid:params:grant-type:ciba",
                auth_req_id=started.json()["auth_req_id"]))
            assert token.status_code == 200, token.text

        async def timed(step: Callable[[int], Awaitable[None]]) -> list[float]:
            seconds: list[float] = []
            deadline = time.monotonic() + limit
            for i in range(flows):
                begun = time.perf_counter()
                await step(i)
                seconds.append(time.perf_counter() - begun)
                if time.monotonic() > deadline:
                    break
            return seconds

        await timed(reference)  # warm-up: imports, caches, the first connections
        print(f"{'':<34} {'count':>6} {'rate':>11}")
        base = figures("client credentials token", await timed(reference))
        ciba = figures(f"CIBA flow ({basis})", await timed(flow))
    print(f"ratio CIBA flow / client-credentials token: {ciba / base:.2f}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--basis", choices=sorted(PURPOSES), default="legitimate_interest")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop each measurement after this long, whatever --flows says")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="numident-bench-") as folder, \
            database(options.db, Path(folder)) as url:
        print(f"CIBA on {options.db}, {options.flows} flows at most")
        asyncio.run(run(url, Path(folder), options.flows, options.basis, options.max_seconds))


if __name__ == "__main__":
    main()
