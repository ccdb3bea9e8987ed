"""The messenger service's composition root: ``build_service`` and ``create_app`` wire every part.

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
from numident.messenger.channels import Channel, CodeProvider, providers_from_settings
from numident.messenger.identification import IdentificationWorker
from numident.messenger.keys import organizer_key
from numident.messenger.metrics import MessengerMetrics
from numident.messenger.operators import (
    OperatorDirectory,
    OperatorLookup,
    RoutingLookup,
    TransportFactory,
)
from numident.messenger.possession import possession_secret
from numident.messenger.service import MessengerService
from numident.messenger.sms import SmsSender
from numident.routing.service import OperatorAliases, RoutingService
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade
from numident.web.access_log import log_key
from numident.web.app import finish, install_common
from numident.web.console.site import install_console
from numident.web.notice_contract import Notice
from numident.web.openapi import correlated, errors_as_served, install_document, with_models

log = structlog.get_logger(__name__)


def routing_service(settings: Settings, engine: Engine) -> RoutingService:
    """Routing over the messenger's database, with the operators' aliases from the config."""
    loads = settings.messenger.routing
    return RoutingService(engine, {
        op.inn: OperatorAliases(owner_ids=op.owner_ids, mncs=op.mncs)
        for op in settings.messenger.operators},
        load_wait_seconds=loads.load_wait_seconds, max_shrink_percent=loads.max_shrink_percent,
        lease_seconds=loads.lease_seconds)


def routing_lookup(settings: Settings, engine: Engine) -> OperatorLookup:
    """Routing by the numbering plan and portability tables in the messenger's database."""
    return RoutingLookup(routing_service(settings, engine))


def build_service(settings: Settings, *, engine: Engine, clock: Clock | None = None,
                  transport_for_operator: TransportFactory | None = None,
                  sms_sender: SmsSender | None = None, lookup: OperatorLookup | None = None,
                  key: PrivateKey | None = None, metrics: MessengerMetrics | None = None,
                  webhook_transport: httpx2.AsyncBaseTransport | None = None,
                  providers: Mapping[Channel, CodeProvider] | None = None,
                  ) -> MessengerService:
    """The use cases over ``engine``; every port may be replaced (tests, the demo).

    ``providers`` replace the configured channel providers one by one; ``sms_sender`` the SMS
    channel's sender."""
    clock = clock or SystemClock()
    messenger = settings.messenger
    key = key or organizer_key(settings)
    operators = OperatorDirectory(messenger.operators, client_id=messenger.organizer, key=key,
                                  clock=clock, timeout=messenger.request_timeout_seconds,
                                  transport_for_operator=transport_for_operator)
    configured, clients = providers_from_settings(settings, clock, sms_sender=sms_sender)
    service = MessengerService(
        engine, clock, messenger, operators=operators,
        providers={**configured, **(providers or {})},
        lookup=lookup or routing_lookup(settings, engine), secret=possession_secret(settings),
        metrics=metrics, webhook_transport=webhook_transport)
    service.closing.extend(clients)
    return service


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
    metrics = MessengerMetrics()
    key = key or organizer_key(settings)
    service = build_service(settings, engine=engine, clock=clock,
                            transport_for_operator=transport_for_operator,
                            sms_sender=sms_sender, lookup=lookup, key=key, metrics=metrics,
                            webhook_transport=webhook_transport, providers=providers)
    worker = IdentificationWorker(service.identifications, clock,
                                  rescan_seconds=messenger.poll_max_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            service.on_attempt = worker.submit
            tasks.append(asyncio.create_task(worker.run(stop)))
            tasks.append(asyncio.create_task(service.dispatcher.run(
                stop, idle_interval=messenger.dispatch.poll_seconds)))
            tasks.append(asyncio.create_task(run_sealer(
                engine, audit_logs("messenger"), key, clock, stop,
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
