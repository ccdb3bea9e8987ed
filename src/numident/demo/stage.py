"""The demo's servers: real uvicorn servers on loopback ports, sharing one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import uvicorn
from fastapi import FastAPI

from numident.client.keys import PrivateKey, ensure_private_key
from numident.config import Settings, load_settings
from numident.core.clock import SystemClock
from numident.demo.data import OPERATORS, DemoOperator, write_subscribers
from numident.messenger.app import create_app as create_messenger
from numident.operator import bootstrap, organizers, registry
from numident.operator.app import create_app as create_gateway
from numident.operator.app import signing_key_path

ORGANIZER = "demo-messenger"
ORGANIZER_SCOPES = ("identification", "sim-swap:check")
FRAUD_PREVENTION = "dpv:FraudPreventionAndDetection"
IDENTITY_VERIFICATION = "dpv:IdentityVerification"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Several servers share the demo's loop; Ctrl-C is the demo's to handle, not theirs.
        yield


@dataclass
class Running:
    name: str
    url: str
    app: FastAPI
    server: _Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serve(name: str, app: FastAPI, port: int) -> Running:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                            access_log=False, lifespan="on")
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{name} did not start")
        await asyncio.sleep(0.01)
    return Running(name, f"http://127.0.0.1:{port}", app, server, task)


def own_store(settings: Settings, home: Path) -> Settings:
    """``settings`` with ``home`` as its home and a SQLite file there as its database.

    ``NUMIDENT_HOME`` and ``NUMIDENT_DATABASE_URL`` name one installation, and the environment
    wins over values given in code; the demo runs four servers, and each must keep its own
    database and keys, under the demo's folder, whatever the environment says.
    """
    return settings.model_copy(update={"home": home, "database_url": None})


def gateway_settings(root: Path, operator: DemoOperator, port: int) -> Settings:
    return own_store(_gateway_settings(root, operator, port), root / operator.key)


def _gateway_settings(root: Path, operator: DemoOperator, port: int) -> Settings:
    return load_settings(None, home=str(root / operator.key), operator={
        "name": operator.key, "public_url": f"http://127.0.0.1:{port}",
        "admin_token": f"{operator.key}-admin", "deferred": operator.deferred,
        "check_seconds": 1.0 if operator.deferred else 0.0,
        "dispatch": {"initial_backoff_seconds": 0.2, "poll_seconds": 0.2},
        "ciba": {"purposes": {FRAUD_PREVENTION: "legitimate_interest",
                              IDENTITY_VERIFICATION: "consent"}}})


def messenger_settings(root: Path, port: int, gateways: dict[str, tuple[int, PrivateKey]],
                       api_token: str, **possession: Any) -> Settings:
    """The demo messenger's settings; ``possession`` overrides its possession settings (the
    benchmarks lift the budgets their synthetic load would spend). Written to
    ``<root>/messenger.toml`` too, for the CLI to use against the running demo."""
    config = messenger_config(root, port, gateways, api_token)
    config["messenger"]["possession"].update(possession)
    root.mkdir(parents=True, exist_ok=True)
    (root / "messenger.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    return own_store(load_settings(None, **config), root / "messenger")


def messenger_config(root: Path, port: int, gateways: dict[str, tuple[int, PrivateKey]],
                     api_token: str) -> dict[str, Any]:
    endpoints = [{"inn": op.inn, "name": op.name,
                  "gateway_url": f"http://127.0.0.1:{gateways[op.key][0]}",
                  "client_id": ORGANIZER,
                  "notice_public_key": json.dumps(gateways[op.key][1].public_jwk())}
                 for op in OPERATORS]
    home = root / "messenger"
    return {"home": str(home), "database_url": f"sqlite:///{home / 'messenger.db'}",
            "messenger": {
        "organizer": ORGANIZER, "operators": endpoints, "api_token": api_token,
        "key_file": str(home / "messenger" / "organizer-key.pem"),
        "public_url": f"http://127.0.0.1:{port}",
        "sms": {"kind": "file", "path": str(root / "sms.jsonl")},
        "flash_call": {"kind": "file", "path": str(root / "flash_call.jsonl")},
        "voice_call": {"kind": "file", "path": str(root / "voice_call.jsonl")},
        "channels": {"order": ["sms", "flash_call", "voice_call"]},
        "possession": {
            "secret": secrets.token_urlsafe(32),
            # The story changes numbers within seconds; a deployment keeps the resend throttle.
            "resend_interval_seconds": 0,
            # Tight enough that the pumping step shows the refusal after a few codes.
            "budgets": {"per_address": {"sends": PUMPING_BUDGET, "window_seconds": 3600}}},
        "poll_initial_seconds": 0.3, "poll_max_seconds": 1.0, "request_timeout_seconds": 2.0,
        # The rule's 20 minutes, shortened so that the unreachable operator shows in seconds.
        "unanswered_after_seconds": 6.0,
        "dispatch": {"initial_backoff_seconds": 0.2, "poll_seconds": 0.2}}}


PUMPING_BUDGET = 4
"""Codes per client address and hour in the demo."""


def prepare_gateway(settings: Settings, operator: DemoOperator, messenger_url: str,
                    messenger_key: PrivateKey) -> FastAPI:
    """A gateway app with its subscribers imported and the demo messenger registered."""
    app = create_gateway(settings)
    gateway = app.state.gateway
    export = write_subscribers(operator, settings.home / "subscribers.csv")
    registry.import_subscribers(gateway.engine, export, now=SystemClock().now(),
                                notice_source=settings.operator.base_url(),
                                handlers=bootstrap.lifecycle_handlers(),
                                columns=bootstrap.registry_columns())
    organizers.add_organizer(gateway.engine, ORGANIZER, f"{messenger_url}/messenger/v1/notices",
                             json.dumps(messenger_key.public_jwk()), SystemClock().now(),
                             scopes=ORGANIZER_SCOPES)
    return app


def gateway_keys(root: Path, ports: dict[str, int]) -> dict[str, tuple[int, PrivateKey]]:
    keys = {}
    for op in OPERATORS:
        settings = gateway_settings(root, op, ports[op.key])
        keys[op.key] = (ports[op.key], ensure_private_key(signing_key_path(settings)))
    return keys


def messenger_app(settings: Settings) -> FastAPI:
    return create_messenger(settings)
