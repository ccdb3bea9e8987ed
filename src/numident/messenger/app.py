"""The messenger service's HTTP application, over the parts that ``bootstrap`` builds.

Nothing here runs at import time. With ``background=True`` the application's lifespan runs the
identification worker (resuming the attempts open at start) and the outbox dispatcher
(webhooks, usage withdrawals); both stop with it. ``background=False`` leaves that work to the
caller (``service.run_identifications()``, ``service.deliver_outbox()``), which is what tests
with a ``FakeClock`` do: a fake clock's instant sleeps would make idle loops spin.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import httpx2
import structlog
from fastapi import FastAPI
from sqlalchemy import Engine

from numident import __version__
from numident.audit.log import audit_logs
from numident.audit.sealer import run_sealer
from numident.client.keys import PrivateKey
from numident.config import Settings
from numident.core.clock import Clock, SystemClock
from numident.messenger import api, console
from numident.messenger.bootstrap import Transports, bootstrap
from numident.messenger.channels import Channel, CodeProvider
from numident.messenger.operators import OperatorLookup, TransportFactory
from numident.messenger.possession import possession_secret
from numident.messenger.sms import SmsSender
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade
from numident.web.access_log import log_key
from numident.web.app import finish, install_common
from numident.web.console.site import install_console
from numident.web.notice_contract import Notice
from numident.web.openapi import correlated, errors_as_served, install_document, with_models

log = structlog.get_logger(__name__)


def create_app(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None,
               transport_for_operator: TransportFactory | None = None,
               sms_sender: SmsSender | None = None, lookup: OperatorLookup | None = None,
               key: PrivateKey | None = None,
               webhook_transport: httpx2.AsyncBaseTransport | None = None,
               providers: Mapping[Channel, CodeProvider] | None = None,
               background: bool = True, migrate: bool = True) -> FastAPI:
    """Build the messenger service's application.

    ``migrate=False`` when the caller prepared the schema itself (tests use ``create_all``).
    ``transport_for_operator(inn)`` lets tests reach gateways in process (``ASGITransport``).
    """
    messenger = settings.messenger
    engine = engine or create_database_engine(settings.database_url_for("messenger"),
                                              pool_size=settings.database_pool_size)
    if migrate:
        upgrade(engine, "messenger")
    clock = clock or SystemClock()
    built = bootstrap(settings, engine=engine, clock=clock,
                      transports=Transports(transport_for_operator, webhook_transport),
                      sms_sender=sms_sender, lookup=lookup, key=key, providers=providers,
                      background=background)
    service, worker, metrics = built.service, built.worker, built.metrics

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            tasks.append(asyncio.create_task(worker.run(stop)))
            tasks.append(asyncio.create_task(service.dispatcher.run(
                stop, idle_interval=messenger.dispatch.poll_seconds)))
            tasks.append(asyncio.create_task(run_sealer(
                engine, audit_logs("messenger"), built.key, clock, stop,
                seal_seconds=messenger.audit.seal_seconds,
                checkpoint_seconds=messenger.audit.checkpoint_seconds,
                batch=messenger.audit.seal_batch)))
        try:
            yield
        finally:
            await finish(stop, tasks)
            await service.aclose()

    app = FastAPI(title="numident messenger service", version=__version__, lifespan=lifespan,
                  description="Possession check, identification at the subscriber's operator, "
                  "the messaging gate, and intake of operator notices.")
    app.state.service = service
    app.include_router(api.router)
    install_console(app, console.messenger_console(messenger, clock), console.router)
    install_common(app, engine=engine, registry=metrics.registry,
                   max_body_bytes=messenger.max_body_bytes, side="messenger",
                   log_key=log_key(settings.log_key, possession_secret(settings)),
                   tracing=settings.tracing)
    install_document(app, lambda document: errors_as_served(document, "ErrorBody"), correlated,
                     with_models(Notice))
    return app
