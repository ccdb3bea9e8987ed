"""The operator gateway's composition root: ``create_app(settings)`` wires every part.

Nothing here runs at import time. Background work (the deferred-answer queue, the notice
dispatcher, the sweep that ends expired SIM swap subscriptions, the audit chain's sealer and
the completion of registry imports whose process died mid-switch) starts with the
application's lifespan and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import structlog
from fastapi import FastAPI
from sqlalchemy import Engine

from numident import __version__
from numident.audit.log import audit_logs
from numident.audit.sealer import run_sealer
from numident.camara.app import install_camara
from numident.camara.sim_swap_delivery import ByKind, SinkSender, run_sweep
from numident.client.keys import PrivateKey, ensure_private_key
from numident.config import Settings
from numident.core.clock import Clock, SystemClock
from numident.operator import (
    admin_api,
    api,
    authorize_api,
    ciba_api,
    console,
    console_compliance,
    discovery,
    registry_switch,
    token_endpoint,
)
from numident.operator.auth import Authenticator
from numident.operator.authorization import NetworkSessionSource, TableSessionSource
from numident.operator.ciba import GRANT_TYPE as CIBA_GRANT_TYPE
from numident.operator.ciba import PING_KIND, Ciba
from numident.operator.ciba_pings import PingSender
from numident.operator.consent import ConsentCapture, FileConsentSender, PurposeConsent
from numident.operator.discovery import Discovery
from numident.operator.gateway import Gateway
from numident.operator.id_tokens import IdTokenIssuer
from numident.operator.metrics import GatewayMetrics
from numident.operator.nats_mode import connect_gateway, run_nats
from numident.operator.notice_delivery import notice_dispatcher, observe_notices
from numident.operator.notice_webhook import declare_notice_webhook
from numident.operator.oauth_errors import OAuthError, oauth_error_response
from numident.operator.replay import SqlJtiStore
from numident.operator.security import ADMIN, AUTHORIZATION_CODE, CLIENT_CREDENTIALS, OPEN_ID
from numident.sinks.addresses import SinkGuard
from numident.sinks.tokens import SinkTokenCipher
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade
from numident.trust.holder_key import holder_key
from numident.trust.tokens import AccessTokenIssuer
from numident.web.access_log import log_key
from numident.web.app import finish, install_common
from numident.web.console.site import install_console
from numident.web.openapi import (
    correlated,
    errors_as_served,
    install_document,
    scopes_as_alternatives,
    served_at,
    with_schemes,
)

log = structlog.get_logger(__name__)


def signing_key_path(settings: Settings) -> Path:
    return settings.home / "operator" / "signing-key.pem"


def default_consent(settings: Settings) -> PurposeConsent:
    """The configured legal basis per purpose, asking subscribers through the file sender."""
    ciba = settings.operator.ciba
    path = ciba.sender.path or settings.home / "operator" / "ciba-consent.jsonl"
    return PurposeConsent(ciba.purposes, FileConsentSender(path))


def create_app(settings: Settings, *, engine: Engine | None = None, clock: Clock | None = None,
               key: PrivateKey | None = None, notice_transport: httpx2.AsyncBaseTransport | None
               = None, background: bool = True,
               network_sessions: NetworkSessionSource | None = None,
               listen_url: str | None = None,
               consent: ConsentCapture | None = None) -> FastAPI:
    """Build the gateway. ``notice_transport`` lets tests deliver notices without sockets;
    ``network_sessions`` replaces the built-in table of network sessions with the operator's
    own source (a policy server or packet gateway lookup, say). ``listen_url`` is where the
    server listens (``http://HOST:PORT``): the issuer identifier unless ``public_url`` is set.
    ``consent`` replaces the built-in CIBA consent capture (legal basis per purpose, file
    sender)."""
    op = settings.operator
    engine = engine or create_database_engine(settings.database_url_for("operator"),
                                              pool_size=settings.database_pool_size)
    upgrade(engine, "operator")
    clock = clock or SystemClock()
    key = key or ensure_private_key(signing_key_path(settings))
    base_url = op.base_url(listen_url)
    metrics = GatewayMetrics()
    gateway = Gateway(engine, clock, op, metrics, notice_source=base_url)
    issuer = AccessTokenIssuer(key, issuer=base_url, audience=base_url,
                               lifetime=op.token_lifetime_seconds, clock=clock)
    authenticator = Authenticator(
        engine, issuer, SqlJtiStore(engine, clock), clock, issuer_url=base_url,
        strict_audience=op.oauth.strict_audience,
        admin_token=op.admin_token.get_secret_value() if op.admin_token else None)

    client = httpx2.AsyncClient(transport=notice_transport, timeout=10.0)
    dispatcher = notice_dispatcher(engine, client, key, clock, op.dispatch)
    dispatcher.on_settled = observe_notices(metrics.registry, engine, clock).settled
    holder = holder_key(settings)
    tokens = token_endpoint.TokenEndpoint(
        engine, clock, authenticator, issuer,
        IdTokenIssuer(key, issuer=base_url, holder_secret=holder.secret, clock=clock))
    sink_cipher = SinkTokenCipher.from_holder_key(holder)
    # SIM swap subscription events share the outbox but go to their sinks with a bearer token.
    sink_sender = SinkSender(client, engine, sink_cipher,
                             SinkGuard(op.camara.sim_swap_private_sinks), now=clock.now)
    dispatcher.sender = ByKind(dispatcher.sender, sink_sender)
    gateway.on_notice = dispatcher.wake
    sessions = network_sessions or TableSessionSource(engine, op.camara.session_header)
    ciba = Ciba(engine, clock, op.ciba, issuer, consent or default_consent(settings),
                sink_cipher, sessions, base_url, http_endpoints=op.camara.sim_swap_http_sinks,
                on_ping=lambda: gateway.on_notice())
    ping_sender = PingSender(client, ciba, SinkGuard(op.camara.sim_swap_private_sinks),
                             now=clock.now)
    dispatcher.sender = ByKind(dispatcher.sender, ping_sender, kind=PING_KIND)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if background:
            tasks.append(asyncio.create_task(gateway.answer_deferred(stop)))
            tasks.append(asyncio.create_task(run_sweep(
                engine, clock, base_url, lambda: gateway.on_notice(), stop,
                op.camara.sim_swap_sweep_seconds)))
            tasks.append(asyncio.create_task(run_sealer(
                engine, audit_logs("operator"), key, clock, stop,
                seal_seconds=op.audit.seal_seconds,
                checkpoint_seconds=op.audit.checkpoint_seconds, batch=op.audit.seal_batch)))
            tasks.append(asyncio.create_task(registry_switch.run_recovery(
                engine, stop, lambda: gateway.on_notice())))
            if op.nats_url:
                connection = await connect_gateway(op)
                tasks.append(asyncio.create_task(
                    run_nats(connection, gateway, op, engine, client, key, sink_sender, clock,
                             stop, ping_sender=ping_sender,
                             on_settled=dispatcher.on_settled)))
            else:
                tasks.append(asyncio.create_task(
                    dispatcher.run(stop, idle_interval=op.dispatch.poll_seconds)))
        try:
            yield
        finally:
            await finish(stop, tasks)
            gateway.limits.flush()
            await client.aclose()
            engine.dispose()

    app = FastAPI(title="numident operator gateway", version=__version__, lifespan=lifespan,
                  description="Identification requests from organizers, answered within 20 "
                  "minutes; usage records; signed notices.")
    app.state.gateway = gateway
    app.state.authenticator = authenticator
    app.state.token_endpoint = tokens
    tokens.add_grant(CIBA_GRANT_TYPE, ciba_api.ciba_grant(ciba))
    app.state.discovery = Discovery(base_url, key, tokens, extra={
        "backchannel_authentication_endpoint": f"{base_url}/oauth2/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": False})
    app.state.signing_key = key
    app.state.holder_key = holder
    app.state.sink_cipher = sink_cipher
    app.state.dispatcher = dispatcher
    app.state.network_sessions = sessions
    app.state.ciba = ciba
    app.include_router(api.router)
    app.include_router(token_endpoint.router)
    app.include_router(authorize_api.router)
    app.include_router(discovery.router)
    app.include_router(ciba_api.router)
    app.include_router(admin_api.router)
    install_console(app, console.operator_console(op, clock), console.router,
                    console_compliance.router)
    install_camara(app, op.camara.disabled_versions, base_url=base_url)
    install_common(app, engine=engine, registry=metrics.registry,
                   max_body_bytes=op.max_body_bytes, side="operator",
                   log_key=log_key(settings.log_key, holder.secret), tracing=settings.tracing,
                   health=lambda: {"pendingRequests": gateway.pending})
    app.add_exception_handler(OAuthError, oauth_error_response)
    declare_notice_webhook(app)
    install_document(app, lambda document: errors_as_served(document, "ErrorBody"), correlated,
                     scopes_as_alternatives, served_at(base_url),
                     with_schemes(OPEN_ID, CLIENT_CREDENTIALS, AUTHORIZATION_CODE, ADMIN))
    return app
