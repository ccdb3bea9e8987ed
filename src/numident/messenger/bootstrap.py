"""The messenger's composition root: ``bootstrap`` builds every part of the service once.

The HTTP application (:func:`numident.messenger.app.create_app`) and the CLI commands that need
the use cases call it; each collaborator gets the one outbox, the one operator directory and the
one clock built here. Every port may be replaced (tests, the demo). Nothing here migrates the
schema: servers do at start, ``numident messenger migrate`` does on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx2
from sqlalchemy import Engine

from numident.client.keys import PrivateKey
from numident.config import Settings
from numident.core.clock import Clock, SystemClock
from numident.messenger.accounts import AccountStore
from numident.messenger.admission import SendAdmission
from numident.messenger.channels import Channel, CodeProvider, providers_from_settings
from numident.messenger.codes import CodeSender
from numident.messenger.delivery import MessengerSender
from numident.messenger.identification import Identifications, IdentificationWorker
from numident.messenger.keys import organizer_key
from numident.messenger.metrics import MessengerMetrics
from numident.messenger.notices import NoticeIntake
from numident.messenger.operators import (
    OperatorDirectory,
    OperatorLookup,
    RoutingLookup,
    TransportFactory,
)
from numident.messenger.possession import PossessionChecks, possession_secret
from numident.messenger.service import MessengerService
from numident.messenger.sms import SmsSender
from numident.messenger.tables import messenger_outbox
from numident.outbox.dispatcher import Dispatcher
from numident.outbox.http_sender import HttpSender
from numident.outbox.metrics import observe_outbox
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import SqlOutbox
from numident.routing.service import OperatorAliases, RoutingService


@dataclass(frozen=True)
class Transports:
    """How the service reaches the outside; None: the network (tests pass in-process ones)."""

    operator: TransportFactory | None = None
    """``transport_for_operator(inn)``: the transport to that operator's gateway."""
    webhook: httpx2.AsyncBaseTransport | None = None
    """The transport of the webhooks to the organizer's backend."""


@dataclass(frozen=True)
class Messenger:
    """The built service and what runs beside it."""

    service: MessengerService
    worker: IdentificationWorker
    """Follows attempts in the background (when the application runs one)."""
    key: PrivateKey
    metrics: MessengerMetrics


def routing_service(settings: Settings, engine: Engine) -> RoutingService:
    """Routing over the messenger's database, with the operators' aliases from the config."""
    loads = settings.messenger.routing
    return RoutingService(engine, {
        op.inn: OperatorAliases(owner_ids=op.owner_ids, mncs=op.mncs)
        for op in settings.messenger.operators},
        load_wait_seconds=loads.load_wait_seconds, max_shrink_percent=loads.max_shrink_percent,
        lease_seconds=loads.lease_seconds)


def bootstrap(settings: Settings, *, engine: Engine, clock: Clock | None = None,
              transports: Transports = Transports(), sms_sender: SmsSender | None = None,
              lookup: OperatorLookup | None = None, key: PrivateKey | None = None,
              metrics: MessengerMetrics | None = None,
              providers: Mapping[Channel, CodeProvider] | None = None,
              background: bool = False) -> Messenger:
    """Build the messenger over ``engine``.

    ``providers`` replace the configured channel providers one by one; ``sms_sender`` the SMS
    channel's sender; ``lookup`` the routing by the numbering plan. With ``background=True``
    each newly opened attempt goes to the worker (which the caller runs)."""
    clock = clock or SystemClock()
    messenger = settings.messenger
    key = key or organizer_key(settings)
    metrics = metrics or MessengerMetrics()
    outbox = SqlOutbox(engine, messenger_outbox)
    store = AccountStore(outbox, messenger.webhook_url)
    operators = OperatorDirectory(messenger.operators, client_id=messenger.organizer, key=key,
                                  clock=clock, timeout=messenger.request_timeout_seconds,
                                  transport_for_operator=transports.operator)
    lookup = lookup or RoutingLookup(routing_service(settings, engine))
    configured, clients = providers_from_settings(settings, clock, sms_sender=sms_sender)
    possession = PossessionChecks(messenger.possession, possession_secret(settings))
    admission = SendAdmission(messenger.possession)
    codes = CodeSender(engine, clock, messenger, possession, admission,
                       {**configured, **(providers or {})}, metrics)
    identifications = Identifications(engine, store, lookup, operators, outbox, clock,
                                      messenger, metrics)
    worker = IdentificationWorker(identifications, clock,
                                  rescan_seconds=messenger.poll_max_seconds)
    webhooks = httpx2.AsyncClient(transport=transports.webhook,
                                  timeout=messenger.request_timeout_seconds)
    dispatcher = Dispatcher(outbox, MessengerSender(HttpSender(webhooks, now=clock.now),
                                                    operators),
                            clock, RetryPolicy.from_settings(messenger.dispatch),
                            concurrency=messenger.dispatch.concurrency,
                            on_settled=observe_outbox(metrics.registry, outbox, clock.now,
                                                      "numident_messenger_outbox",
                                                      "Webhooks and usage withdrawals").settled)
    service = MessengerService(
        engine=engine, clock=clock, settings=messenger, store=store, outbox=outbox,
        possession=possession, admission=admission, codes=codes,
        identifications=identifications, notices=NoticeIntake(engine, store, clock, messenger),
        lookup=lookup, operators=operators, dispatcher=dispatcher, metrics=metrics,
        closing=[webhooks, *clients], on_attempt=worker.submit if background else None)
    return Messenger(service, worker, key, metrics)
