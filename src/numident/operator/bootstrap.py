"""The operator gateway's composition root: every part built once, each before its users.

:func:`bootstrap` builds the parts of a serving gateway (:class:`Operator`) in dependency
order: the loop that notice writers wake comes first, so the gateway and CIBA are handed its
``wake`` when they are built; the senders of each outbox kind (signed notices, SIM swap
events, CIBA pings) are composed before the dispatcher that uses them. Nothing is rewired
afterwards. :func:`gateway` builds the use-case object alone, for the CLI.

This is where the CAMARA APIs plug into the operator: their handlers for the gateway's
lifecycle events (:data:`numident.camara.sim_swap_events.LIFECYCLE_HANDLERS`), the holder
attributes the registry file may carry (:data:`numident.camara.holders.HOLDER_COLUMNS`) and
their senders. No other module of :mod:`numident.operator` imports :mod:`numident.camara` (but
:mod:`numident.operator.app`, which mounts the CAMARA routes).

Nothing here runs at import time; nothing runs in the background until the caller starts
:meth:`Operator.background` (``create_app`` does, in the application's lifespan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import Engine

from numident.audit.log import audit_logs
from numident.audit.sealer import run_sealer
from numident.camara.holders import HOLDER_COLUMNS
from numident.camara.sim_swap_delivery import ByKind, SinkSender, run_sweep
from numident.camara.sim_swap_events import LIFECYCLE_HANDLERS
from numident.camara.sim_swap_events import OUTBOX_KIND as SIM_SWAP_KIND
from numident.client.keys import PrivateKey, ensure_private_key
from numident.config import Settings
from numident.core.clock import Clock, SystemClock
from numident.operator import registry_switch, token_endpoint
from numident.operator.auth import Authenticator
from numident.operator.authorization import NetworkSessionSource, TableSessionSource
from numident.operator.ciba import PING_KIND, Ciba
from numident.operator.ciba_pings import PingSender
from numident.operator.consent import ConsentCapture, FileConsentSender, PurposeConsent
from numident.operator.events import NOTICE_KIND, LifecycleHandlers
from numident.operator.export_file import OptionalColumns
from numident.operator.gateway import Gateway
from numident.operator.id_tokens import IdTokenIssuer
from numident.operator.metrics import GatewayMetrics
from numident.operator.nats_mode import Delivery, connect_gateway, run_nats
from numident.operator.notice_delivery import (
    audited_outbox,
    notice_dispatcher,
    notice_sender,
    observe_notices,
)
from numident.operator.replay import SqlJtiStore
from numident.outbox.dispatcher import Dispatcher
from numident.outbox.loop import WakeableLoop
from numident.outbox.store import SqlOutbox
from numident.sinks.addresses import SinkGuard
from numident.sinks.tokens import SinkTokenCipher
from numident.trust.holder_key import HolderKey, holder_key
from numident.trust.tokens import AccessTokenIssuer


def signing_key_path(settings: Settings) -> Path:
    return settings.home / "operator" / "signing-key.pem"


def default_consent(settings: Settings) -> PurposeConsent:
    """The configured legal basis per purpose, asking subscribers through the file sender."""
    ciba = settings.operator.ciba
    path = ciba.sender.path or settings.home / "operator" / "ciba-consent.jsonl"
    return PurposeConsent(ciba.purposes, FileConsentSender(path))


def lifecycle_handlers() -> LifecycleHandlers:
    """What a lifecycle event changes besides the registry and its usages."""
    return LIFECYCLE_HANDLERS


def registry_columns() -> OptionalColumns:
    """The optional columns of the registry file that an import reads and stores."""
    return HOLDER_COLUMNS


def gateway(settings: Settings, engine: Engine, clock: Clock | None = None, *,
            metrics: GatewayMetrics | None = None, notice_source: str | None = None,
            store: SqlOutbox | None = None, wakeup: WakeableLoop | None = None) -> Gateway:
    """The use-case object, with the lifecycle handlers; notices it queues are woken on
    ``wakeup`` (none: they wait for a serving gateway's dispatcher to poll)."""
    return Gateway(engine, clock or SystemClock(), settings.operator,
                   metrics or GatewayMetrics(),
                   notice_source=notice_source or settings.operator.base_url(),
                   outbox=store or audited_outbox(engine),
                   on_notice=wakeup.wake if wakeup is not None else lambda: None,
                   lifecycle=lifecycle_handlers())


@dataclass(frozen=True)
class Operator:
    """The parts of a serving gateway, built once by :func:`bootstrap`."""

    settings: Settings
    engine: Engine
    clock: Clock
    key: PrivateKey
    base_url: str
    metrics: GatewayMetrics
    wakeup: WakeableLoop
    """The loop the outbox's runner (dispatcher or NATS relay) runs on; writers wake it."""
    gateway: Gateway
    issuer: AccessTokenIssuer
    authenticator: Authenticator
    holder: HolderKey
    tokens: token_endpoint.TokenEndpoint
    sink_cipher: SinkTokenCipher
    sessions: NetworkSessionSource
    ciba: Ciba
    client: httpx2.AsyncClient
    deliveries: tuple[Delivery, ...]
    """Each outbox kind with its sender (one JetStream consumer each on NATS)."""
    dispatcher: Dispatcher

    async def start(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """Start the gateway's background work, until ``stop``: the deferred queue, the sweep
        of expired SIM swap subscriptions, the audit sealer, the recovery of interrupted
        imports, and the outbox (the dispatcher, or on NATS the relay and its consumers: the
        connection is made and the streams declared before this returns, so a wrong URL stops
        the start)."""
        op = self.settings.operator
        connection = (await connect_gateway(op, [d.kind for d in self.deliveries])
                      if op.nats_url else None)
        wake = self.wakeup.wake
        work: list[Coroutine[Any, Any, None]] = [
            self.gateway.answer_deferred(stop),
            run_sweep(self.engine, self.clock, self.base_url, wake, stop,
                      op.camara.sim_swap_sweep_seconds),
            run_sealer(self.engine, audit_logs("operator"), self.key, self.clock, stop,
                       seal_seconds=op.audit.seal_seconds,
                       checkpoint_seconds=op.audit.checkpoint_seconds,
                       batch=op.audit.seal_batch),
            registry_switch.run_recovery(self.engine, stop, wake,
                                         handlers=self.gateway.lifecycle),
        ]
        if connection is not None:
            work.append(run_nats(connection, self.gateway, op, self.clock, stop,
                                 wakeup=self.wakeup, deliveries=self.deliveries,
                                 on_settled=self.dispatcher.on_settled))
        else:
            work.append(self.dispatcher.run(stop, idle_interval=op.dispatch.poll_seconds))
        return [asyncio.create_task(each) for each in work]

    async def close(self) -> None:
        self.gateway.limits.flush()
        await self.client.aclose()
        self.engine.dispose()


def bootstrap(settings: Settings, *, engine: Engine, clock: Clock | None = None,
              key: PrivateKey | None = None,
              notice_transport: httpx2.AsyncBaseTransport | None = None,
              network_sessions: NetworkSessionSource | None = None,
              listen_url: str | None = None,
              consent: ConsentCapture | None = None) -> Operator:
    """Build every part of the gateway once (see the module docstring for the order).

    ``notice_transport`` lets tests deliver without sockets; ``network_sessions`` replaces the
    built-in table of network sessions; ``listen_url`` is where the server listens (the
    issuer unless ``public_url`` is set); ``consent`` replaces the built-in CIBA consent
    capture.
    """
    op = settings.operator
    clock = clock or SystemClock()
    key = key or ensure_private_key(signing_key_path(settings))
    base_url = op.base_url(listen_url)
    metrics = GatewayMetrics()
    wakeup = WakeableLoop(clock)
    store = audited_outbox(engine)
    the_gateway = gateway(settings, engine, clock, metrics=metrics, notice_source=base_url,
                          store=store, wakeup=wakeup)
    issuer = AccessTokenIssuer(key, issuer=base_url, audience=base_url,
                               lifetime=op.token_lifetime_seconds, clock=clock)
    authenticator = Authenticator(
        engine, issuer, SqlJtiStore(engine, clock), clock, issuer_url=base_url,
        strict_audience=op.oauth.strict_audience,
        admin_token=op.admin_token.get_secret_value() if op.admin_token else None)
    holder = holder_key(settings)
    tokens = token_endpoint.TokenEndpoint(
        engine, clock, authenticator, issuer,
        IdTokenIssuer(key, issuer=base_url, holder_secret=holder.secret, clock=clock))
    sink_cipher = SinkTokenCipher.from_holder_key(holder)
    sessions = network_sessions or TableSessionSource(engine, op.camara.session_header)
    ciba = Ciba(engine, clock, op.ciba, issuer, consent or default_consent(settings),
                sink_cipher, sessions, base_url, http_endpoints=op.camara.sim_swap_http_sinks,
                on_ping=wakeup.wake)

    client = httpx2.AsyncClient(transport=notice_transport, timeout=10.0)
    guard = SinkGuard(op.camara.sim_swap_private_sinks)
    notices = notice_sender(client, key, clock)
    # SIM swap subscription events and CIBA pings share the outbox but go to their sinks
    # with a bearer token.
    sink_events = SinkSender(client, engine, sink_cipher, guard, now=clock.now)
    pings = PingSender(client, ciba, guard, now=clock.now)
    deliveries = (Delivery(NOTICE_KIND, notices, "delivery"),
                  Delivery(SIM_SWAP_KIND, sink_events, "sim-swap-delivery"),
                  Delivery(PING_KIND, pings, "ciba-ping-delivery"))
    dispatcher = notice_dispatcher(
        engine, client, key, clock, op.dispatch,
        sender=ByKind(ByKind(notices, sink_events), pings, kind=PING_KIND), wakeup=wakeup,
        on_settled=observe_notices(metrics.registry, store, clock).settled, store=store)
    return Operator(settings, engine, clock, key, base_url, metrics, wakeup, the_gateway,
                    issuer, authenticator, holder, tokens, sink_cipher, sessions, ciba, client,
                    deliveries, dispatcher)
