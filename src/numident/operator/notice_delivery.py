"""How the gateway delivers its notices: the outbox dispatcher over signed HTTP POSTs."""

from __future__ import annotations

from datetime import timedelta

import httpx2
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from numident.client.keys import PrivateKey
from numident.client.signatures import NoticeSigner
from numident.config import DispatchSettings
from numident.core.clock import Clock
from numident.operator.tables import outbox
from numident.outbox.dispatcher import Dispatcher
from numident.outbox.http_sender import HttpSender
from numident.outbox.metrics import DeliveryMetrics, observe_outbox
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import SqlOutbox


def retry_policy(settings: DispatchSettings) -> RetryPolicy:
    return RetryPolicy(initial=timedelta(seconds=settings.initial_backoff_seconds),
                       max_delay=timedelta(seconds=settings.max_backoff_seconds),
                       give_up_after=timedelta(hours=settings.give_up_after_hours))


def notice_dispatcher(engine: Engine, client: httpx2.AsyncClient, key: PrivateKey, clock: Clock,
                      settings: DispatchSettings) -> Dispatcher:
    """A dispatcher that signs each notice with the operator's key (RFC 9421)."""
    signer = NoticeSigner(key, now=clock.now)
    return Dispatcher(SqlOutbox(engine, outbox), HttpSender(client, signer.sign, now=clock.now),
                      clock, retry_policy(settings), concurrency=settings.concurrency,
                      lease_seconds=settings.lease_seconds)


def observe_notices(registry: CollectorRegistry, engine: Engine, clock: Clock) -> DeliveryMetrics:
    """``numident_notices{status}``, the oldest undelivered notice's age and the delivery
    counters on ``registry``."""
    return observe_outbox(registry, SqlOutbox(engine, outbox), clock.now, "numident_notices",
                          "Notices")
