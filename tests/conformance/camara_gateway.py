"""A real operator gateway on loopback with the CAMARA test assets, and what talks to it.

:func:`running_gateway` imports the assets' billing export with the CLI, starts
``numident operator serve`` (uvicorn) with the CAMARA settings the features need, registers an
organizer with every CAMARA scope through the admin API and records the assets' lifecycle
events. :class:`GatewayClient` obtains the tokens the scenarios name: two-legged (client
credentials), three-legged (``/oauth2/authorize`` from the device's network session, then the
code), expired (minted with the gateway's own key and a clock in the past) and forged.
:class:`Gateways` holds one such gateway per definition set, each with the ``operator.camara``
settings its set's features ask for.

SIM swap subscriptions need an ``https://`` sink (the schema's pattern): :class:`Sink` is an
HTTPS server on loopback with a certificate of a throw-away authority, which the gateway process
trusts through ``SSL_CERT_FILE``; ``sim_swap_private_sinks`` lets the gateway deliver to it.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from camara_assets import NOT_APPLICABLE_PREFIX, SIM_SWAP_MONITORED_DAYS, Assets
from camara_spec import DEFINITION_SETS, DefinitionSet, api_documents
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion, token_request_form
from numident.client.keys import PrivateKey, generate_key, load_private_key
from numident.core.clock import FakeClock, SystemClock
from numident.trust.tokens import AccessTokenIssuer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_servers import Server, cli, free_port, start_server

ADMIN_TOKEN = "conformance-admin"
HOLDER_KEY = "c0ffee" * 10 + "c0de"
"""The key of the KYC holder attributes' digests, shared by the import and the gateway."""
SESSION_HEADER = "X-Network-Session"
CLIENT_ID = "conformance"
REDIRECT_URI = "https://organizer.example/callback"


# -- the sink ---------------------------------------------------------------------------------

@dataclass
class Sink:
    """Records every CloudEvent POSTed to it (body and headers)."""

    url: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0
                 ) -> dict[str, Any]:
        """The first event ``match`` accepts, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = next((e for e in self.events if match(e)), None)
            if found is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found is not None, f"no such event reached the sink in {timeout} s; " \
            f"it received {len(self.events)} events: {self.events[-5:]}"
        return found


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away authority and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "sink.pem", folder / "sink-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@contextmanager
def https_sink(folder: Path) -> Iterator[tuple[Sink, Path]]:
    """A running sink and the authority file its clients must trust."""
    ca, certificate, key = _certificates(folder)
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with sink.lock:
                sink.events.append(json.loads(body))
                sink.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    sink.url = f"https://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink, ca
    finally:
        server.shutdown()
        server.server_close()


# -- the gateway ------------------------------------------------------------------------------

def settings_toml(home: Path, port: int, camara: Mapping[str, bool]) -> str:
    """The gateway's configuration: SQLite in ``home``, the CAMARA options the features use
    and ``camara``'s."""
    extra = "".join(f"{name} = {'true' if value else 'false'}\n"
                    for name, value in camara.items())
    return f"""
home = "{home}"
database_url = "sqlite:///{home / 'operator.db'}"
log_level = "WARNING"

[operator]
public_url = "http://127.0.0.1:{port}"
admin_token = "{ADMIN_TOKEN}"

[operator.dispatch]
poll_seconds = 0.1
initial_backoff_seconds = 0.2

[operator.camara]
session_header = "{SESSION_HEADER}"
not_applicable_prefixes = ["{NOT_APPLICABLE_PREFIX}"]
sim_swap_monitored_days = {SIM_SWAP_MONITORED_DAYS}
sim_swap_sweep_seconds = 0.5
sim_swap_private_sinks = true
holder_key = "{HOLDER_KEY}"
{extra}"""


@dataclass
class GatewayClient:
    """Calls the gateway as the organizer does, and as the operator's staff does (admin)."""

    url: str
    home: Path
    key: PrivateKey
    http: httpx2.Client
    scopes: list[str]
    _tokens: dict[tuple[str, str | None, str], tuple[float, str]] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def admin_call(self, method: str, path: str, body: dict[str, Any]) -> httpx2.Response:
        response = self.http.request(method, f"{self.url}{path}", json=body, headers=self.admin)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} " \
            f"{response.text}"
        return response

    def _assertion(self) -> str:
        return make_client_assertion(self.key, CLIENT_ID, f"{self.url}/oauth2/token",
                                     SystemClock())

    def token(self, scope: str) -> str:
        """A two-legged token (client credentials) granting ``scope``."""
        return self._cached((scope, None, ""), lambda: self._token_response(
            token_request_form(self._assertion(), scope)))

    def line_token(self, number: str, scope: str, authentication: str = "network") -> str:
        """A three-legged token for ``number``: its device's network session, then the code."""
        def obtain() -> str:
            session = f"s-{number}-{authentication}"
            self.admin_call("PUT", f"/admin/v1/network-sessions/{session}",
                            {"phoneNumber": number, "authentication": authentication})
            response = self.http.get(f"{self.url}/oauth2/authorize",
                                     headers={SESSION_HEADER: session},
                                     params={"response_type": "code", "client_id": CLIENT_ID,
                                             "redirect_uri": REDIRECT_URI, "scope": scope,
                                             "state": "conformance"})
            assert response.status_code == 302, response.text
            query = dict(parse_qsl(urlsplit(response.headers["location"]).query))
            assert "code" in query, query
            return self._token_response({
                "grant_type": "authorization_code", "code": query["code"],
                "redirect_uri": REDIRECT_URI, "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self._assertion()})

        return self._cached((scope, number, authentication), obtain)

    def expired_token(self, scope: str) -> str:
        """A token signed with the gateway's own key that expired an hour ago."""
        key = load_private_key(self.home / "operator" / "signing-key.pem")
        clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
        issuer = AccessTokenIssuer(key, issuer=self.url, audience=self.url, lifetime=3600,
                                   clock=clock)
        return issuer.issue(CLIENT_ID, scope).access_token

    def forged_token(self, scope: str) -> str:
        """A well-formed, unexpired token signed by a key the gateway does not have."""
        issuer = AccessTokenIssuer(generate_key(), issuer=self.url, audience=self.url,
                                   clock=SystemClock())
        return issuer.issue(CLIENT_ID, scope).access_token

    def _token_response(self, form: dict[str, str]) -> str:
        response = self.http.post(f"{self.url}/oauth2/token", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def _cached(self, key: tuple[str, str | None, str], obtain: Callable[[], str]) -> str:
        """Tokens are reused for five minutes (they live ten), except Number Verification
        tokens, which serve a single call and so are obtained for each."""
        if "number-verification:" in key[0]:
            return obtain()
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached is None or now - cached[0] > 300:
            cached = (now, obtain())
            self._tokens[key] = cached
        return cached[1]


@dataclass
class RunningGateway:
    client: GatewayClient
    assets: Assets
    sink: Sink
    server: Server
    camara: Mapping[str, bool]
    """The ``operator.camara`` settings beyond the ones every gateway of the suite has."""


@contextmanager
def running_gateway(folder: Path, scopes: list[str], camara: Mapping[str, bool]
                    ) -> Iterator[RunningGateway]:
    """The gateway process with the assets loaded, its ``operator.camara`` settings completed
    by ``camara``; stopped (and the sink closed) on exit."""
    assets = Assets()
    home = folder / "home"
    home.mkdir()
    port = free_port()
    config = folder / "operator.toml"
    config.write_text(settings_toml(home, port, camara), encoding="utf-8")
    export = folder / "export.csv"
    export.write_text(assets.export(), encoding="utf-8")
    with https_sink(folder) as (sink, ca):
        env = {"SSL_CERT_FILE": str(ca)}
        cli(["operator", "import-subscribers", str(export), "--config", str(config)], env)
        server = start_server("operator", env, folder / "gateway.log", port, config)
        try:
            client = GatewayClient(server.url, home, generate_key(), httpx2.Client(timeout=20),
                                   scopes)
            with client.http:
                client.admin_call("POST", "/admin/v1/organizers", {
                    "name": CLIENT_ID, "noticeUrl": f"{sink.url}/notices",
                    "publicKey": json.dumps(client.key.public_jwk()), "scopes": scopes,
                    "redirectUris": [REDIRECT_URI]})
                for event in assets.events():
                    client.admin_call("POST", "/admin/v1/events", event)
                yield RunningGateway(client, assets, sink, server, camara)
        finally:
            server.stop()


@dataclass
class Gateways:
    """The gateway of each definition set, started on first use."""

    tmp_path_factory: pytest.TempPathFactory
    stack: ExitStack
    running: dict[str, RunningGateway] = field(default_factory=dict)

    def __getitem__(self, definitions: DefinitionSet) -> RunningGateway:
        if definitions.name not in self.running:
            scopes = sorted({scope for d in DEFINITION_SETS
                             for document in api_documents(d.folder)
                             for operation in document.operations
                             for alternative in operation.scopes for scope in alternative})
            folder = self.tmp_path_factory.mktemp(f"conformance-{definitions.name}")
            self.running[definitions.name] = self.stack.enter_context(
                running_gateway(folder, scopes, definitions.camara_settings))
        return self.running[definitions.name]
