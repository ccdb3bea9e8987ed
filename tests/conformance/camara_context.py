"""One scenario's state: the request being built, the response, the notifications it awaits.

The features build a request in any order (the subscription scenarios even set the body after
"When the HTTP "POST" request is sent"), so sending is lazy: a "sent" step records which
operation to call, and the request goes out when a step first needs the response. A scenario
without a "sent" step calls the operation its feature is about.

The ``Authorization`` header is recorded as a kind of token (:class:`Auth`) and minted when the
request goes out, with the scope of the operation actually called.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
from camara_assets import Line
from camara_bodies import build, get_path, has_path, path_of, set_path
from camara_gateway import RunningGateway
from camara_spec import ApiDocument, Operation, api_documents

MISSING: Any = object()
"""A request without a body."""

DEVICE_APIS = frozenset({"Number Verification"})
"""APIs whose every operation is about the device: their "valid access token" is a
three-legged one (the spec's info: the number is taken only from the token)."""
DEFAULT_EXTRAS = {"Know Your Customer Match": ("givenName", "familyName")}
"""Optional properties a "valid parameter combination" holds beside the required ones."""


@dataclass
class Auth:
    """What the ``Authorization`` header holds: ``valid`` (two-legged, or three-legged on a
    device API), ``line`` (three-legged for ``number``), ``expired``, ``forged``,
    ``wrong_scope`` or ``none``."""

    kind: str = "valid"
    number: str | None = None
    authentication: str = "network"


@dataclass
class Sent:
    method: str
    path: str
    operation: Operation
    body: Any
    headers: dict[str, str]
    at: datetime


@dataclass
class Scenario:
    """The state of one scenario (the ``ctx`` fixture)."""

    gateway: RunningGateway
    document: ApiDocument
    feature_operation: str | None
    line: Line
    resource: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth)
    body: Any = MISSING
    pending: tuple[str, str, Operation] | None = None
    sent: Sent | None = None
    response: httpx2.Response | None = None
    received_at: datetime | None = None
    subscription_id: str | None = None
    subscription_body: Any = None
    notification: dict[str, Any] | None = None
    swap_time: datetime | None = None
    last_property: str | None = None

    # -- building ---------------------------------------------------------------------------

    @property
    def body_operation(self) -> Operation:
        """The operation whose request body the scenario builds."""
        if self.feature_operation:
            found = self.document.operation(self.feature_operation)
            assert found is not None, self.feature_operation
            return found
        with_body = [o for o in self.document.operations if "requestBody" in o.spec
                     and o.path == (self.resource or o.path)]
        assert len(with_body) == 1, f"which operation of {self.resource} has the body?"
        return with_body[0]

    def default_body(self) -> Any:
        """A request body compliant with the schema, made of the scenario's assets."""
        operation = self.body_operation
        schema = self.document.request_schema(operation)
        assert schema is not None, f"{operation.operation_id} has no request body"
        extras = DEFAULT_EXTRAS.get(self.document.title, ())
        if self.id_document_required:
            extras = (*extras, "idDocument")
        body = build(schema, self.document.resolve, self.values(), include=extras)
        problems = self.document.errors(body, self.document.request_located(operation))
        assert not problems, f"the default body {body} breaks the schema: {problems}"
        return body

    @property
    def id_document_required(self) -> bool:
        """True when the gateway requires the holder's idDocument (KYC Match second-level
        validation) and the document defines that rule."""
        defined = "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED" in str(self.document.doc)
        return defined and bool(self.gateway.camara.get("kyc_match_id_document_required"))

    def values(self) -> dict[str, Any]:
        """What the assets say a body should hold, by property name."""
        assets = self.gateway.assets
        return {**self.line.holder, "phoneNumber": self.line.number,
                "specifiedDate": self.contract_start(last=True),
                "tenureDate": assets.past_date.isoformat(), "sink": self.gateway.sink.url}

    def contract_start(self, *, last: bool) -> str:
        """The day the line's first (or current) holder signed their contract."""
        start = (self.line.next_holder_from if last and self.line.next_holder_from
                 else self.line.activated_at)
        assert start is not None, f"{self.line.number} has no known contract start"
        return start.date().isoformat()

    def phone_path(self) -> str:
        """Where the request body holds the phone number (``$.phoneNumber`` at the top)."""
        schema = self.document.request_schema(self.body_operation) or {}
        sample = build(schema, self.document.resolve, {"phoneNumber": "+1"})
        return path_of(sample, "phoneNumber") or "$.phoneNumber"

    def use_line(self, line: Line) -> None:
        """Make ``line`` the scenario's line, in the body too when the body names one."""
        self.line = line
        if isinstance(self.body, dict) and has_path(self.body, self.phone_path()):
            set_path(self.body, self.phone_path(), line.number)

    # -- sending ----------------------------------------------------------------------------

    def operation_for(self, method: str, path: str) -> Operation:
        for document in [self.document, *api_documents(self.document.path.parent.parent)]:
            found = document.operation_at(method, path)
            if found is not None:
                return found
        raise AssertionError(f"no operation {method} {path} in the definitions")

    def send_later(self, method: str | None = None, operation_id: str | None = None,
                   path: str | None = None) -> None:
        if operation_id is not None:
            operation = self.document.operation(operation_id)
            assert operation is not None, f"{operation_id} is not in {self.document.path.name}"
            self.pending = (operation.method.upper(), operation.path, operation)
            return
        assert method is not None
        target = path or self.resource
        self.pending = (method.upper(), target, self.operation_for(method, target))

    def exchange(self) -> httpx2.Response:
        """The response, sending the pending request (or the feature's operation) first."""
        if self.response is None:
            if self.pending is None:
                operation = self.body_operation
                self.pending = (operation.method.upper(), operation.path, operation)
            method, path, operation = self.pending
            self.response = self.send(method, path, operation)
        return self.response

    def send(self, method: str, path: str, operation: Operation) -> httpx2.Response:
        headers = dict(self.headers)
        token = self.token_for(operation)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = self.body if method in ("POST", "PUT", "PATCH") else MISSING
        content = None if body is MISSING else json.dumps(body).encode()
        kept = body if body is MISSING else copy.deepcopy(body)
        self.sent = Sent(method, path, operation, kept, headers, datetime.now(UTC))
        response = self.gateway.client.http.request(method, self.gateway.client.url + path,
                                                    headers=headers, content=content)
        self.received_at = datetime.now(UTC)
        if method == "POST" and response.status_code == 201 and "subscriptions" in path:
            self.subscription_id = str(response.json().get("id"))
            self.subscription_body = copy.deepcopy(body)
        return response

    def token_for(self, operation: Operation) -> str | None:
        client, kind = self.gateway.client, self.auth.kind
        scope = operation.scopes[0][0]
        if kind == "valid" and self.document.title in DEVICE_APIS:
            return client.line_token(self.line.number, scope)
        if kind in ("valid", "two_legged"):
            return client.token(scope)
        if kind == "line":
            return client.line_token(self.auth.number or self.line.number, scope,
                                     self.auth.authentication)
        if kind == "expired":
            return client.expired_token(scope)
        if kind == "forged":
            return client.forged_token(scope)
        if kind == "wrong_scope":
            needed = {s for alternative in operation.scopes for s in alternative}
            other = next(s for s in client.scopes if s not in needed
                         and s.split(":")[0] != scope.split(":")[0])
            return client.token(other)
        assert kind == "none", kind
        return None

    def create_subscription(self) -> str:
        """A subscription made through the API, as the scenario's client; its id."""
        operation = self.document.operation("createSimSwapSubscription")
        assert operation is not None
        saved = self.body, self.auth, self.headers, self.sent
        self.body, self.auth = self.default_body(), Auth()
        self.headers = {"Content-Type": "application/json"}
        response = self.send("POST", operation.path, operation)
        self.body, self.auth, self.headers, self.sent = saved
        assert response.status_code == 201, response.text
        assert self.subscription_id is not None
        return self.subscription_id

    # -- reading ----------------------------------------------------------------------------

    def json(self) -> Any:
        response = self.exchange()
        assert response.content, f"the {response.status_code} response has no body"
        return response.json()

    def declares_no_content(self) -> bool:
        """True when the API declares no body for the response's status (204 No Content)."""
        response = self.exchange()
        assert self.sent is not None
        declared = self.sent.operation.spec["responses"].get(str(response.status_code), {})
        declared = self.document.deref(declared, self.document.path)[0]
        return "content" not in declared

    def focus(self) -> Any:
        """The document "response property" steps read: the response body, or the data of
        the notification the scenario last received (the subscription scenarios go on to
        "the response property" of the event they waited for)."""
        if self.notification is not None:
            return self.notification.get("data", {})
        return self.json()

    def property(self, path: str) -> Any:
        self.last_property = path
        document = self.focus()
        try:
            return get_path(document, path)
        except KeyError:
            raise AssertionError(f"the response has no {path}: {document}") from None

    def correlator(self) -> str:
        return str(uuid.uuid4())

    def describe(self) -> str:
        """The request sent and the response received, for a failure's report."""
        if self.sent is None:
            return "no request was sent"
        sent = self.sent
        lines = [f"{sent.method} {sent.path} ({sent.operation.operation_id}), token: "
                 f"{self.auth.kind} {self.auth.number or ''} {self.auth.authentication}"]
        lines += [f"{k}: {v}" for k, v in sent.headers.items() if k != "Authorization"]
        lines.append("(no body)" if sent.body is MISSING else json.dumps(sent.body))
        if self.response is not None:
            lines += ["", f"-> {self.response.status_code}",
                      *(f"{k}: {v}" for k, v in self.response.headers.items()),
                      self.response.text]
        if self.notification is not None:
            lines += ["", f"notification: {json.dumps(self.notification)}"]
        return "\n".join(lines)
