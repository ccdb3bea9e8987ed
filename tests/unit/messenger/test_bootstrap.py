"""The messenger's composition root builds each part once and hands the same one to every user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from messenger_fakes import LOOKUP
from sqlalchemy import Engine

from numident.client.keys import generate_key
from numident.config import Settings
from numident.core.clock import FakeClock
from numident.messenger.bootstrap import bootstrap
from numident.outbox.policy import RetryPolicy


@pytest.mark.anyio
async def test_one_outbox_one_directory_and_the_configured_retry_policy(
        settings: Settings, engine: Engine, clock: FakeClock) -> None:
    built = bootstrap(settings, engine=engine, clock=clock, lookup=LOOKUP, key=generate_key())
    service = built.service
    try:
        assert service.identifications.outbox is service.outbox
        assert service.dispatcher.outbox is service.outbox
        assert service.identifications.store is service.store
        assert service.identifications.operators is service.operators
        assert service.metrics is built.metrics
        assert service.dispatcher.policy == RetryPolicy.from_settings(
            settings.messenger.dispatch)
        assert service.dispatcher.policy.give_up_after == timedelta(
            hours=settings.messenger.dispatch.give_up_after_hours)
    finally:
        await service.aclose()


@pytest.mark.anyio
async def test_attempts_go_to_the_worker_only_when_it_runs(
        settings: Settings, engine: Engine, clock: FakeClock) -> None:
    """Without a background worker (tests, the CLI) the caller follows attempts itself."""
    quiet = bootstrap(settings, engine=engine, clock=clock, lookup=LOOKUP, key=generate_key())
    working = bootstrap(settings, engine=engine, clock=clock, lookup=LOOKUP, key=generate_key(),
                        background=True)
    try:
        assert working.service.on_attempt == working.worker.submit
        assert quiet.service.on_attempt is None
    finally:
        await quiet.service.aclose()
        await working.service.aclose()
