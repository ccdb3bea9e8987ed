"""A client generated from the checked-in messenger document makes real calls to it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from numident.config import load_settings
from numident.demo.data import write_plan
from numident.messenger.app import create_app
from numident.messenger.bootstrap import routing_service
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

pytestmark = pytest.mark.anyio
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "messenger-service.json"
PACKAGE = "numident_messenger_client"


async def test_a_generated_client_sets_a_number_and_reads_the_typed_account(
        tmp_path: Path, generate_client: Callable[[Path, str], ModuleType]) -> None:
    """setPhoneNumber then getAccount: the typed account with its state enum and datetime;
    an unknown account is the typed 404 ErrorBody."""
    generated = generate_client(DOCUMENT, PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")
    put = importlib.import_module(f"{PACKAGE}.api.accounts.set_phone_number")
    get = importlib.import_module(f"{PACKAGE}.api.accounts.get_account")
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    engine = create_database_engine(settings.database_url_for("messenger"))
    upgrade(engine, "messenger")  # codes go only to numbers the plan lists as mobile
    routing_service(settings, engine).import_plan(write_plan(tmp_path / "plan.csv"))
    app = create_app(settings, engine=engine, background=False, migrate=False)
    try:
        client = generated.Client(base_url="http://messenger",
                                  httpx_args={"transport": httpx.ASGITransport(app=app)})
        started = await put.asyncio("user-1", client=client,
                                    body=models.PhoneNumberBody(phone_number="+79161234567"))
        assert isinstance(started, models.AccountView)
        assert started.state is models.AccountState.VERIFYING_POSSESSION
        assert started.can_send is False
        read = await get.asyncio("user-1", client=client)
        assert isinstance(read, models.AccountView)
        assert read.phone_number == "+79161234567"
        assert isinstance(read.updated_at, datetime)
        assert read.updated_at.tzinfo is not None
        missing = await get.asyncio("nobody", client=client)
        assert isinstance(missing, models.ErrorBody)
        assert missing.status == 404
    finally:
        app.state.service.engine.dispose()
