"""Token endpoint throughput: client-credentials requests per second, in process.

Each request is a full ``POST /oauth2/token``: form parsing, the assertion's signature check
(EdDSA, Ed25519 or ES256), the jti written to the database (the replay store all replicas
share, with expired entries deleted), and a signed access token. The gateway is the real app
on a temporary SQLite file (or ``--db postgresql``), called through httpx2's ASGI transport, so
the figure is the server's own cost without sockets. Bounded by ``--requests`` and
``--seconds``; prints figures, never fails on time.

    .venv/bin/python bench/bench_token_endpoint.py [--db postgresql] [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx2
from joserfc import jwt
from sqlalchemy import create_engine, text

from numident.client.assertions import ASSERTION_TYPE
from numident.client.keys import JWS_REGISTRY, generate_key
from numident.config import load_settings
from numident.operator import organizers
from numident.operator.app import create_app

BASE = "http://127.0.0.1:8080"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


async def measure(database_url: str, home: Path, alg: str, requests: int, seconds: float
                  ) -> tuple[int, float, list[float]]:
    settings = load_settings(None, home=str(home), database_url=database_url,
                             operator={"public_url": BASE})
    app = create_app(settings, background=False)
    key = generate_key("ES256" if alg == "ES256" else "Ed25519")
    name = f"bench-{alg.lower()}"
    organizers.add_organizer(app.state.gateway.engine, name, f"{BASE}/n",
                             json.dumps(key.public_jwk()), app.state.gateway.clock.now())
    latencies: list[float] = []
    async with app.router.lifespan_context(app), httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url=BASE) as client:
        start = time.perf_counter()
        while len(latencies) < requests and time.perf_counter() - start < seconds:
            now = int(time.time())
            assertion = jwt.encode({"alg": alg}, {
                "iss": name, "sub": name, "aud": BASE, "iat": now, "exp": now + 3600,
                "jti": str(uuid.uuid4())}, key.jose, algorithms=[alg], registry=JWS_REGISTRY)
            began = time.perf_counter()
            response = await client.post("/oauth2/token", data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion})
            latencies.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
        elapsed = time.perf_counter() - start
    return len(latencies), elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    print(f"token endpoint, {options.db}, sequential, up to {options.requests} requests "
          f"or {options.seconds:.0f} s per algorithm")
    print(f"{'alg':8} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for alg in ("EdDSA", "Ed25519", "ES256"):
        with tempfile.TemporaryDirectory() as home:
            url, admin, name = f"sqlite:///{home}/bench.db", None, None
            if options.db == "postgresql":
                name = f"numident_bench_{uuid.uuid4().hex[:10]}"
                admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
            try:
                count, elapsed, latencies = asyncio.run(
                    measure(url, Path(home), alg, options.requests, options.seconds))
            finally:
                if admin is not None:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"{alg:8} {count:8d} {count / elapsed:8.0f} "
              f"{statistics.median(ordered) * 1000:8.2f} {p99 * 1000:8.2f}")


if __name__ == "__main__":
    main()
