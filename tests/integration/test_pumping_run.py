"""A pumping run: a bounded burst of code requests from several addresses over one range,
through the HTTP API of two messenger services on one database (two processes' worth of
engines and pools), stopped by the budgets and the range circuit counted in the database.

Parametrised over SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from numident.client.keys import generate_key
from numident.config import load_settings
from numident.demo.data import write_plan
from numident.messenger.admission import refusal_counts
from numident.messenger.app import create_app
from numident.messenger.bootstrap import routing_service
from numident.messenger.sms import last_code_in_file
from numident.messenger.tables import code_sends
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

pytestmark = pytest.mark.anyio
TOKEN = {"Authorization": "Bearer backend"}
BOTS = ("203.0.113.10", "203.0.113.11", "198.51.100.20", "2001:db8:bad::1")
PER_BOT = 12
PREMIUM = 3
"""Each bot also tries premium-rate numbers (+7 809 ...), listed in no mobile range."""



@contextlib.asynccontextmanager
async def two_services(database_url: str, tmp_path: Path) -> AsyncIterator[list[FastAPI]]:
    sms = tmp_path / "sms.jsonl"
    settings = load_settings(None, home=str(tmp_path / "home"), database_url=database_url,
                             messenger={
        "api_token": "backend", "sms": {"kind": "file", "path": str(sms)},
        "possession": {"secret": "p" * 32, "resend_interval_seconds": 0,
                       "budgets": {"per_address": {"sends": 6}, "per_range": {"sends": 40}},
                       "circuit": {"min_sends": 15, "min_success_ratio": 0.2}}})
    engines = [create_database_engine(database_url) for _ in range(2)]
    upgrade(engines[0], "messenger")
    routing_service(settings, engines[0]).import_plan(write_plan(tmp_path / "plan.csv"))
    apps = [create_app(settings, engine=engine, key=generate_key(), background=False,
                       migrate=False) for engine in engines]
    try:
        yield apps
    finally:
        for app in apps:
            await app.state.service.aclose()
        for engine in engines:
            engine.dispose()


def client(app: FastAPI) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                              base_url="http://messenger.test", headers=TOKEN)


async def test_a_pumping_burst_from_several_addresses_is_stopped_by_the_budgets(
        database_url: str, tmp_path: Path) -> None:
    """4 bots x (12 numbers of Alfa's range + 3 premium numbers), spread over two services at
    once: the premium numbers are refused before anything is sent, the circuit stops the
    range after 15 unconfirmed codes, and a real user in Beta's range still gets a code."""
    async with two_services(database_url, tmp_path) as apps:
        clients = [client(app) for app in apps]

        async def bot(b: int, address: str) -> list[httpx2.Response]:
            numbers = [f"+79165{b:02d}{i:04d}" for i in range(PER_BOT)] + [
                f"+78095{b:02d}{i:04d}" for i in range(PREMIUM)]
            return [await clients[(b + i) % 2].put(
                f"/messenger/v1/accounts/bot-{b}-{i}/phone-number",
                json={"phoneNumber": number, "clientAddress": address})
                for i, number in enumerate(numbers)]

        replies = [r for rs in await asyncio.gather(*(bot(b, a) for b, a in enumerate(BOTS)))
                   for r in rs]
        codes: Counter[Any] = Counter(
            (r.status_code, r.json()["code"] if r.status_code != 202 else None)
            for r in replies)
        real = await clients[1].put("/messenger/v1/accounts/user/phone-number",
                                    json={"phoneNumber": "+79175550123",
                                          "clientAddress": "192.0.2.44"})
        for c in clients:
            await c.aclose()
        engine = apps[0].state.service.engine
        with engine.connect() as conn:
            sent = conn.execute(select(func.count()).select_from(code_sends)
                                .where(code_sends.c.status == "sent")).scalar_one()
            trail = refusal_counts(conn)
    attempted = len(BOTS) * (PER_BOT + PREMIUM)
    assert attempted == 60
    assert codes[(202, None)] == 15
    assert codes[(422, "NUMBER_NOT_MOBILE")] == 12
    # What the circuit did not stop, the per-address budget (6 each) may have: together 33.
    assert codes[(429, "RANGE_SUSPENDED")] + codes[(429, "SEND_BUDGET_EXHAUSTED")] == 33
    assert sum(codes.values()) == attempted
    assert real.status_code == 202
    assert last_code_in_file(tmp_path / "sms.jsonl", "+79175550123") is not None
    assert sent == 15 + 1
    assert sum(trail.values()) == 12 + 33
    assert trail["not_mobile"] == 12
    metrics = [app.state.service.metrics.registry for app in apps]
    assert sum(m.get_sample_value("numident_messenger_code_refusals_total",
                                  {"reason": reason}) or 0
               for m in metrics for reason in trail) == 45
    assert sum(m.get_sample_value("numident_messenger_code_sends_total",
                                  {"channel": "sms", "outcome": "sent"}) or 0
               for m in metrics) == 16
    print(f"\npumping run: attempted {attempted}, sent {codes[(202, None)]}, refused "
          f"{attempted - codes[(202, None)]} ({dict(sorted(trail.items()))})")


async def test_the_possession_audit_trail_is_append_only(database_url: str,
                                                         tmp_path: Path) -> None:
    """A refusal written by the service cannot be changed or deleted in the database."""
    async with two_services(database_url, tmp_path) as apps:
        async with client(apps[0]) as api:
            refused = await api.put("/messenger/v1/accounts/bot/phone-number",
                                    json={"phoneNumber": "+78095550000"})
        assert refused.status_code == 422
        engine = apps[0].state.service.engine
        for statement in ("UPDATE possession_audit SET reason = 'x'",
                          "DELETE FROM possession_audit"):
            with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.connect() as conn:
            assert refusal_counts(conn) == {"not_mobile": 1}
