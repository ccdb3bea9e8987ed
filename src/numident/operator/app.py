"""The operator gateway's HTTP application: ``create_app(settings)`` serves the parts that
:func:`numident.operator.bootstrap.bootstrap` built.

Nothing here runs at import time. Background work (the deferred-answer queue, the notice
dispatcher, the sweep that ends expired SIM swap subscriptions, the audit chain's sealer and
the completion of registry imports whose process died mid-switch) starts with the
application's lifespan and stops with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx2
import structlog
from fastapi import FastAPI
from sqlalchemy import Engine

from numident import __version__
from numident.camara import sim_swap_admin
from numident.camara.app import install_camara
from numident.client.keys import PrivateKey
from numident.config import Settings
from numident.core.clock import Clock
from numident.operator import (
    admin_api,
    api,
    authorize_api,
    ciba_api,
    console,
    console_compliance,
    discovery,
    token_endpoint,
)
from numident.operator.authorization import NetworkSessionSource
from numident.operator.bootstrap import bootstrap, default_consent, signing_key_path
from numident.operator.ciba import GRANT_TYPE as CIBA_GRANT_TYPE
from numident.operator.consent import ConsentCapture
from numident.operator.discovery import Discovery
from numident.operator.notice_webhook import declare_notice_webhook
from numident.operator.oauth_errors import OAuthError, oauth_error_response
from numident.operator.security import ADMIN, AUTHORIZATION_CODE, CLIENT_CREDENTIALS, OPEN_ID
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade
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

__all__ = ["create_app", "default_consent", "signing_key_path"]

log = structlog.get_logger(__name__)


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
    parts = bootstrap(settings, engine=engine, clock=clock, key=key,
                      notice_transport=notice_transport, network_sessions=network_sessions,
                      listen_url=listen_url, consent=consent)
    gateway, base_url, tokens = parts.gateway, parts.base_url, parts.tokens

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = await parts.start(stop) if background else []
        try:
            yield
        finally:
            await finish(stop, tasks)
            await parts.close()

    app = FastAPI(title="numident operator gateway", version=__version__, lifespan=lifespan,
                  description="Identification requests from organizers, answered within 20 "
                  "minutes; usage records; signed notices.")
    app.state.gateway = gateway
    app.state.authenticator = parts.authenticator
    app.state.token_endpoint = tokens
    tokens.add_grant(CIBA_GRANT_TYPE, ciba_api.ciba_grant(parts.ciba))
    app.state.discovery = Discovery(base_url, parts.key, tokens, extra={
        "backchannel_authentication_endpoint": f"{base_url}/oauth2/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": False})
    app.state.signing_key = parts.key
    app.state.holder_key = parts.holder
    app.state.sink_cipher = parts.sink_cipher
    app.state.dispatcher = parts.dispatcher
    app.state.network_sessions = parts.sessions
    app.state.ciba = parts.ciba
    app.include_router(api.router)
    app.include_router(token_endpoint.router)
    app.include_router(authorize_api.router)
    app.include_router(discovery.router)
    app.include_router(ciba_api.router)
    app.include_router(admin_api.router)
    app.include_router(sim_swap_admin.router)
    install_console(app, console.operator_console(op, parts.clock), console.router,
                    console_compliance.router)
    install_camara(app, op.camara.disabled_versions, base_url=base_url)
    install_common(app, engine=engine, registry=parts.metrics.registry,
                   max_body_bytes=op.max_body_bytes, side="operator",
                   log_key=log_key(settings.log_key, parts.holder.secret),
                   tracing=settings.tracing,
                   health=lambda: {"pendingRequests": gateway.pending})
    app.add_exception_handler(OAuthError, oauth_error_response)
    declare_notice_webhook(app)
    install_document(app, lambda document: errors_as_served(document, "ErrorBody"), correlated,
                     scopes_as_alternatives, served_at(base_url),
                     with_schemes(OPEN_ID, CLIENT_CREDENTIALS, AUTHORIZATION_CODE, ADMIN))
    return app
