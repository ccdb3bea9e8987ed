"""A large delta import into a serving gateway never stops it answering for a second.

A real gateway process serves identifications from a registry of 200k lines while
``numident operator import-subscribers`` changes every one of those contracts (half ended,
half reassigned). A bounded load generator identifies throughout: every request must be
answered within MAX_LATENCY, each number's answers must go from before the import to after it
and never back, and every usage the import ended has its notice in the outbox. A switch in one
transaction holds SQLite's write lock for about 1.7 s over such a delta (more on a busy
machine): the import switches it in by short transactions instead.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import time
from pathlib import Path

import httpx2
import pytest
from e2e_servers import NUMIDENT, free_port, start_server
from import_fixtures import ORGANIZER, Installation, child_env, installation, number, write_delta
from sqlalchemy import Engine, func, select

from numident.client.assertions import make_client_assertion, token_request_form
from numident.core.clock import SystemClock
from numident.operator.tables import outbox, subscriber_history, usages

LINES = 200_000
CONCURRENCY = 4
WARMUP = 200
MAX_REQUESTS = 40_000
MAX_SECONDS = 400.0
MAX_LATENCY = 1.0
"""The longest any identification may wait, the import running or not."""


async def token(http: httpx2.AsyncClient, url: str, setup: Installation) -> str:
    assertion = make_client_assertion(setup.key, ORGANIZER, f"{url}/oauth2/token",
                                      SystemClock())
    response = await http.post(f"{url}/oauth2/token", data=token_request_form(assertion))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Load:
    """Identifications from CONCURRENCY clients until told to stop (bounded in count)."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self.answers: list[tuple[float, int, str]] = []  # (started, n, result)
        self.failures: list[str] = []
        self.stop = asyncio.Event()
        self.steady = asyncio.Event()
        """Set once WARMUP requests have been answered."""

    async def client(self, http: httpx2.AsyncClient, url: str, bearer: str, seed: int) -> None:
        pick = random.Random(seed)
        headers = {"Authorization": f"Bearer {bearer}"}
        while not self.stop.is_set() and len(self.samples) < MAX_REQUESTS:
            n = pick.randrange(LINES)
            started = time.monotonic()
            try:
                response = await http.post(f"{url}/identification/v1/requests", headers=headers,
                                           json={"phoneNumber": number(n),
                                                 "identificationCode": f"u-{seed}-{n}"})
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    self.answers.append((started, n, response.json()["result"]))
            except httpx2.HTTPError as exc:
                self.failures.append(repr(exc))
            self.samples.append((started, time.monotonic() - started))
            if len(self.samples) >= WARMUP:
                self.steady.set()


async def identify_during_import(url: str, setup: Installation, delta: Path
                                 ) -> tuple[Load, float, float, subprocess.CompletedProcess[str]]:
    """Run the load, start the import once it is steady, stop the load after the import."""
    load = Load()
    async with httpx2.AsyncClient(timeout=30) as http:
        bearer = await token(http, url, setup)
        clients = [asyncio.create_task(load.client(http, url, bearer, seed))
                   for seed in range(CONCURRENCY)]
        deadline = time.monotonic() + MAX_SECONDS
        await asyncio.wait_for(load.steady.wait(), MAX_SECONDS)
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *NUMIDENT, "operator", "import-subscribers", str(delta), env=child_env(setup.env()),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(process.communicate(),
                                              max(deadline - time.monotonic(), 1))
        except TimeoutError:
            out, err = b"", f"the import did not end within {MAX_SECONDS} s".encode()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            ended = time.monotonic()
            await asyncio.sleep(0.5)
            load.stop.set()
            await asyncio.gather(*clients)
    result = subprocess.CompletedProcess(["import"], process.returncode, out.decode(),
                                         err.decode())
    return load, began, ended, result


@pytest.mark.timeout(600)
def test_a_delta_import_of_200k_changed_contracts_never_stops_identification_for_a_second(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every identification during the import is answered, none waits MAX_LATENCY; an ended
    contract is never confirmed again once it was refused; every usage recorded before the
    import ended with exactly one notice."""
    with installation(tmp_path, database_url, LINES) as setup:
        delta = tmp_path / "delta.csv"
        write_delta(delta, LINES)
        port = free_port()
        server = start_server("operator", setup.env(
            NUMIDENT_OPERATOR__PUBLIC_URL=f"http://127.0.0.1:{port}"),
            tmp_path / "gateway.log", port)
        try:
            load, began, ended, imported = asyncio.run(
                identify_during_import(server.url, setup, delta))
        finally:
            server.stop()
        assert imported.returncode == 0, imported.stderr
        assert f"{LINES} rows: 0 new, {LINES} changed" in imported.stdout
        during = sorted(seconds for started, seconds in load.samples
                        if began <= started <= ended)
        everything = sorted(seconds for _, seconds in load.samples)
        p99 = statistics.quantiles(during, n=100)[98] if len(during) >= 2 else during[-1]
        with capsys.disabled():
            print(f"\n[{database_url.split(':')[0]}] import {ended - began:.1f} s; "
                  f"{len(load.samples)} identifications, {len(during)} during the import, "
                  f"{len(load.failures)} failed; during the import: max {during[-1]:.3f} s, "
                  f"p99 {p99:.3f} s, p50 {statistics.median(during):.3f} s")
        assert load.failures == []
        assert len(during) >= 20
        assert everything[-1] < MAX_LATENCY
        assert answered_before_or_after(load.answers) == []
        announced, ended, stale = notices_and_usages(setup.engine)
        assert len(announced) == len(set(announced)) > 0
        assert ended <= set(announced)
        assert stale == 0


def answered_before_or_after(answers: list[tuple[float, int, str]]) -> list[int]:
    """The even (ended) numbers confirmed after they were once refused: a number is either
    still as before the import (confirmed) or as after it (not found), never back."""
    refused: set[int] = set()
    back = []
    for _, n, result in sorted(answers):
        if result == "not_found":
            refused.add(n)
        elif n in refused:
            back.append(n)
        assert result == "confirmed" or n % 2 == 0, (n, result)
    return back


def notices_and_usages(engine: Engine) -> tuple[list[tuple[str, str]], set[tuple[str, str]],
                                                 int]:
    """The (number, code) of every notice; those of the usages now invalidated; and how many
    usages recorded before the import's time are still active (each should have ended)."""
    with engine.connect() as conn:
        announced = [(data["phoneNumber"], data["identificationCode"]) for data in (
            json.loads(payload)["data"] for payload in conn.execute(select(outbox.c.payload))
            .scalars())]
        ended = {(r.phone_number, r.identification_code) for r in conn.execute(
            select(usages.c.phone_number, usages.c.identification_code)
            .where(usages.c.status == "invalidated"))}
        imported_at = conn.execute(select(func.max(subscriber_history.c.occurred_at))).scalar()
        stale = conn.execute(select(func.count()).select_from(usages).where(
            usages.c.status == "active", usages.c.since < imported_at)).scalar_one()
    return announced, ended, int(stale)
