"""What the gateway's and the messenger's OpenAPI documents promise is what the servers do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from numident.camara.app import served_apis
from numident.config import load_settings
from numident.messenger.app import create_app as create_messenger
from numident.operator.app import create_app as create_gateway

Document = dict[str, Any]

GATEWAY_OPERATIONS = {
    ("post", "/identification/v1/requests"): "createIdentificationRequest",
    ("get", "/identification/v1/requests/{requestId}"): "getIdentificationRequest",
    ("post", "/identification/v1/requests/batch"): "createIdentificationBatch",
    ("delete", "/identification/v1/usages/{identificationCode}"): "withdrawUsage",
    ("post", "/oauth2/token"): "requestAccessToken",
    ("get", "/oauth2/authorize"): "authorize",
    ("post", "/oauth2/bc-authorize"): "requestBackchannelAuthentication",
    ("get", "/.well-known/oauth-authorization-server"): "getAuthorizationServerMetadata",
    ("get", "/.well-known/openid-configuration"): "getOpenIdConfiguration",
    ("post", "/admin/v1/events"): "recordLifecycleEvent",
    ("post", "/admin/v1/organizers"): "registerOrganizer",
    ("get", "/admin/v1/organizers/{name}/limits"): "getOrganizerLimits",
    ("put", "/admin/v1/organizers/{name}/limits"): "setOrganizerLimits",
    ("put", "/admin/v1/organizers/{name}/ciba"): "setOrganizerCibaDelivery",
    ("put", "/admin/v1/network-sessions/{sessionId}"): "putNetworkSession",
    ("delete", "/admin/v1/network-sessions/{sessionId}"): "deleteNetworkSession",
    ("get", "/admin/v1/sim-swap-subscriptions"): "listSimSwapSubscriptions",
    ("delete", "/admin/v1/sim-swap-subscriptions/{subscriptionId}"): "endSimSwapSubscription",
    ("get", "/admin/v1/notices"): "listNotices",
    ("post", "/admin/v1/notices/{noticeId}/retry"): "retryNotice",
}
MESSENGER_OPERATIONS = {
    ("put", "/messenger/v1/accounts/{accountId}/phone-number"): "setPhoneNumber",
    ("post", "/messenger/v1/accounts/{accountId}/phone-number/confirm"): "confirmPhoneNumber",
    ("get", "/messenger/v1/accounts/{accountId}"): "getAccount",
    ("post", "/messenger/v1/notices"): "receiveNotice",
}


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Document]]:
    home = tmp_path_factory.mktemp("openapi")
    settings = load_settings(None, home=str(home), database_url=f"sqlite:///{home}/db")
    gateway = create_gateway(settings, background=False)
    messenger = create_messenger(settings, background=False)
    try:
        yield {"gateway": gateway.openapi(), "messenger": messenger.openapi()}
    finally:
        gateway.state.gateway.engine.dispose()
        messenger.state.service.engine.dispose()


def operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


@pytest.mark.parametrize(("side", "expected"), [("gateway", GATEWAY_OPERATIONS),
                                                ("messenger", MESSENGER_OPERATIONS)])
def test_own_operations_have_stable_meaningful_ids(documents: dict[str, Document], side: str,
                                                   expected: dict[tuple[str, str], str]) -> None:
    """Each of the service's own operations carries the operationId a generated client names
    its method by; none is the framework's generated ``<function>_<path>_<method>``."""
    found = {(m, p): o["operationId"] for m, p, o in operations(documents[side])
             if (m, p) in expected}
    assert found == expected
    ids = [o["operationId"] for _, _, o in operations(documents[side])]
    assert len(ids) == len(set(ids))


OWN_PREFIXES = ("/identification/", "/admin/", "/messenger/")


def own_operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    return ((m, p, o) for m, p, o in operations(document) if p.startswith(OWN_PREFIXES))


@pytest.mark.parametrize("side", ["gateway", "messenger"])
def test_no_operation_documents_the_framework_validation_error(
        documents: dict[str, Document], side: str) -> None:
    """A request that fails validation is answered 400 with the error body, never 422
    ``HTTPValidationError``, and the documents say so."""
    document = documents[side]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        assert "HTTPValidationError" not in str(operation), (method, path)
        validated = [p for p in operation.get("parameters", [])
                     if p["name"] not in ("x-correlator", "X-Request-Id")]
        if operation.get("requestBody") or validated:
            assert "400" in operation["responses"], (method, path)


@pytest.mark.parametrize("side", ["gateway", "messenger"])
def test_every_error_of_the_own_apis_is_the_error_body(documents: dict[str, Document],
                                                       side: str) -> None:
    """Each documented 4xx/5xx of the identification, admin and messenger APIs is
    ``ErrorBody`` (``status``, ``code``, ``message``), the body the servers send."""
    document = documents[side]
    body = document["components"]["schemas"]["ErrorBody"]
    assert sorted(body["required"]) == ["code", "message", "status"]
    seen = 0
    for method, path, operation in own_operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
                seen += 1
    assert seen >= 4 * len(list(own_operations(document)))


@pytest.mark.anyio
async def test_a_malformed_body_is_the_documented_400(tmp_path: Path) -> None:
    """The messenger answers a phone number of the wrong type with 400 ``INVALID_ARGUMENT``
    in the shape of the 400 its document names for ``setPhoneNumber``."""
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app = create_messenger(settings, background=False)
    try:
        document = app.openapi()
        operation = document["paths"]["/messenger/v1/accounts/{accountId}/phone-number"]["put"]
        ref = operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://messenger") as client:
            response = await client.put("/messenger/v1/accounts/a-1/phone-number",
                                        json={"phoneNumber": 79161234567})
        assert response.status_code == 400
        body = response.json()
        assert set(body) == set(schema["properties"]) == set(schema["required"])
        assert body["code"] == "INVALID_ARGUMENT"
        assert "phoneNumber" in body["message"]
    finally:
        app.state.service.engine.dispose()



async def camara_documents(tmp_path: Path) -> dict[str, Document]:
    """Every CAMARA version document the gateway serves, by its root."""
    settings = load_settings(None, home=str(tmp_path), database_url=f"sqlite:///{tmp_path}/db")
    app = create_gateway(settings, background=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gateway") as client:
            return {api.root: (await client.get(f"{api.root}/openapi.json")).json()
                    for api in served_apis()}
    finally:
        app.state.gateway.engine.dispose()


@pytest.mark.anyio
async def test_camara_documents_document_the_400_they_answer(tmp_path: Path) -> None:
    """Each served CAMARA version document names ``ErrorInfo`` for validation failures (400)
    and keeps only the 422s its API really answers (``ErrorInfo`` too)."""
    served = await camara_documents(tmp_path)
    assert len(served) >= 12
    for root, document in served.items():
        assert "HTTPValidationError" not in document["components"]["schemas"], root
        for method, path, operation in operations(document):
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorInfo"}, (method, path)


def test_the_gateway_declares_how_its_tokens_are_obtained(
        documents: dict[str, Document]) -> None:
    """OpenID discovery, client credentials with private_key_jwt, the authorization code
    and the admin token are security schemes of the gateway's document, at its endpoints."""
    schemes = documents["gateway"]["components"]["securitySchemes"]
    assert schemes["openId"]["type"] == "openIdConnect"
    assert schemes["openId"]["openIdConnectUrl"] == "/.well-known/openid-configuration"
    assert "ciba" in schemes["openId"]["description"]
    credentials = schemes["oAuth2ClientCredentials"]
    assert credentials["type"] == "oauth2"
    assert credentials["flows"]["clientCredentials"]["tokenUrl"] == "/oauth2/token"
    assert "private_key_jwt" in credentials["description"]
    code = schemes["oAuth2AuthorizationCode"]["flows"]["authorizationCode"]
    assert (code["authorizationUrl"], code["tokenUrl"]) == ("/oauth2/authorize", "/oauth2/token")
    assert schemes["adminToken"] == {"type": "http", "scheme": "bearer",
                                     "description": schemes["adminToken"]["description"]}
    assert documents["gateway"]["servers"] == [{"url": "http://127.0.0.1:8080"}]


@pytest.mark.parametrize(("side", "method", "path", "security"), [
    ("gateway", "post", "/identification/v1/requests",
     [{"oAuth2ClientCredentials": ["identification"]}, {"openId": ["identification"]}]),
    ("gateway", "delete", "/identification/v1/usages/{identificationCode}",
     [{"oAuth2ClientCredentials": ["identification"]}, {"openId": ["identification"]}]),
    ("gateway", "get", "/admin/v1/notices", [{"adminToken": []}]),
    ("gateway", "put", "/admin/v1/organizers/{name}/ciba", [{"adminToken": []}]),
    ("gateway", "post", "/sim-swap/vwip/check",
     [{"openId": ["sim-swap:check"]}, {"openId": ["sim-swap"]}]),
    ("messenger", "put", "/messenger/v1/accounts/{accountId}/phone-number",
     [{"backendToken": []}]),
])
def test_each_operation_names_the_token_it_needs(documents: dict[str, Document], side: str,
                                                 method: str, path: str,
                                                 security: list[Document]) -> None:
    """An operation lists its security requirements with scopes (any one suffices)."""
    assert documents[side]["paths"][path][method]["security"] == security


@pytest.mark.parametrize("side", ["gateway", "messenger"])
def test_every_operation_takes_and_echoes_the_correlator(documents: dict[str, Document],
                                                         side: str) -> None:
    """``x-correlator`` and ``X-Request-Id`` are optional headers of every operation,
    ``x-correlator`` and ``x-request-id`` headers of every response, and ``Authorization`` is
    left to the security schemes, not listed as a parameter."""
    for method, path, operation in operations(documents[side]):
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "authorization" not in {name.lower() for name in headers}, (method, path)
        assert headers["x-correlator"]["required"] is False, (method, path)
        assert headers["x-correlator"]["schema"]["pattern"].startswith("^[a-zA-Z0-9"), path
        assert headers["X-Request-Id"]["required"] is False, (method, path)
        for response in operation["responses"].values():
            assert {"x-correlator", "x-request-id"} <= response["headers"].keys(), (method, path)


def test_notices_need_no_backend_token(documents: dict[str, Document]) -> None:
    """The notice intake is authenticated by the operator's signature, not a bearer token."""
    operation = documents["messenger"]["paths"]["/messenger/v1/notices"]["post"]
    assert "security" not in operation
    assert set(documents["messenger"]["components"]["securitySchemes"]) == {"backendToken"}


def schema_of(document: Document, name: str) -> Document:
    return document["components"]["schemas"][name]  # type: ignore[no-any-return]


def test_gateway_answers_declare_their_values(documents: dict[str, Document]) -> None:
    """``status`` and ``result`` are enums, the times RFC 3339 date-times, and the request's
    fields carry the patterns the gateway checks them by."""
    gateway = documents["gateway"]
    answer = schema_of(gateway, "RequestAnswer")["properties"]
    assert answer["status"]["enum"] == ["pending", "answered", "expired"]
    assert answer["result"]["anyOf"][0]["enum"] == ["confirmed", "not_found"]
    for name in ("receivedAt", "answerDue"):
        assert answer[name]["format"] == "date-time"
    assert answer["answeredAt"]["anyOf"][0]["format"] == "date-time"
    request = schema_of(gateway, "IdentificationRequest")["properties"]
    assert request["identificationCode"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert request["phoneNumber"]["pattern"] == r"^\+[0-9 ()\-.]{1,31}$"
    withdraw = gateway["paths"]["/identification/v1/usages/{identificationCode}"]["delete"]
    [code] = [p for p in withdraw["parameters"] if p["in"] == "path"]
    assert code["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"


def test_messenger_accounts_declare_their_states(documents: dict[str, Document]) -> None:
    """The account's ``state`` lists the SPEC's states; ids and numbers their patterns."""
    messenger = documents["messenger"]
    view = schema_of(messenger, "AccountView")["properties"]
    assert schema_of(messenger, "AccountState")["enum"] == [
        "unidentified", "verifying_possession", "pending", "identified", "refused",
        "unanswered", "reidentification_required"]
    assert view["state"] == {"$ref": "#/components/schemas/AccountState"}
    assert view["updatedAt"]["format"] == "date-time"
    assert view["simSwappedAt"]["anyOf"][0]["format"] == "date-time"
    assert schema_of(messenger, "PhoneNumberBody")["properties"]["phoneNumber"]["pattern"] \
        == r"^[+0-9 ()\-.]{1,32}$"
    get = messenger["paths"]["/messenger/v1/accounts/{accountId}"]["get"]
    [account] = [p for p in get["parameters"] if p["in"] == "path"]
    assert account["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"


@pytest.mark.parametrize(("pattern", "accepted", "refused"), [
    (r"^\+[0-9 ()\-.]{1,31}$", ["+79161234567", "+7 916 123-45-67"], ["89161234567", "+7x"]),
    ("^[A-Za-z0-9._:-]{1,128}$", ["user-42", "a" * 128], ["", "a" * 129, "юзер"]),
])
def test_the_patterns_are_the_ones_the_server_checks(pattern: str, accepted: list[str],
                                                     refused: list[str]) -> None:
    """The documented patterns agree with the core's checks on both sides of the line."""
    import re

    from numident.core.identification import validate_identification_code
    from numident.core.numbers import normalize
    from numident.errors import InvalidInput

    check = normalize if "+" in pattern else validate_identification_code
    for value in accepted:
        assert re.fullmatch(pattern, value)
        check(value)
    for value in refused:
        assert not re.fullmatch(pattern, value)
        with pytest.raises(InvalidInput):
            check(value)


def resolving(document: Document, name: str) -> Any:
    """A validator of component ``name`` that resolves the document's references."""
    from openapi_schema_validator import OAS31Validator

    return OAS31Validator({"$ref": f"#/components/schemas/{name}",
                           "components": document["components"]})


def test_the_gateway_document_declares_the_notices_it_sends(
        documents: dict[str, Document]) -> None:
    """``webhooks.notice`` is the signed CloudEvent POST with its delivery rules, and the
    event the gateway builds is valid by the documented schema."""
    from datetime import UTC, datetime

    from numident.core.notices import NoticeType
    from numident.wire.notice import Notice, to_cloudevent

    gateway = documents["gateway"]
    operation = gateway["webhooks"]["notice"]["post"]
    assert operation["operationId"] == "sendNotice"
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert all(headers[h]["required"] for h in ("Signature", "Signature-Input",
                                                "Content-Digest"))
    assert 'tag="numident-notice"' in headers["Signature-Input"]["description"]
    assert operation["requestBody"]["content"] == {
        "application/cloudevents+json": {"schema": {"$ref": "#/components/schemas/Notice"}}}
    assert "24 hours" in operation["description"]
    assert "same event id" in operation["description"]
    assert "duplicate" in operation["description"]
    notice = schema_of(gateway, "Notice")["properties"]
    assert notice["type"]["enum"] == [f"org.numident.notice.{k}" for k in NoticeType]
    event = json.loads(to_cloudevent(Notice("n-1", NoticeType.CONTRACT_TERMINATED, "user-42",
                                            "+79161234567", datetime(2026, 12, 1, tzinfo=UTC),
                                            "e-1"), "http://gateway"))
    validator = resolving(gateway, "Notice")
    validator.validate(event)
    del event["data"]["identificationCode"]
    assert not validator.is_valid(event)


def without_defaults(schema: Any) -> Any:
    """``schema`` without ``default`` keys (one generator writes ``default: null``)."""
    if isinstance(schema, dict):
        return {k: without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [without_defaults(v) for v in schema]
    return schema


def test_the_messenger_document_declares_the_notices_it_receives(
        documents: dict[str, Document]) -> None:
    """``POST /messenger/v1/notices`` takes the same CloudEvent (structured or binary mode)
    with the same signature headers, and answers the receipt the gateway's webhook names."""
    gateway, messenger = documents["gateway"], documents["messenger"]
    operation = messenger["paths"]["/messenger/v1/notices"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/cloudevents+json"]["schema"]["$ref"].endswith("/Notice")
    assert content["application/json"]["schema"]["$ref"].endswith("/NoticeData")
    for name in ("Notice", "NoticeData", "NoticeReceipt"):
        assert without_defaults(schema_of(messenger, name)) == \
            without_defaults(schema_of(gateway, name)), name
    signed = [p for p in operation["parameters"] if p["name"].startswith(("Signature",
                                                                           "Content-Digest"))]
    sent = [p for p in gateway["webhooks"]["notice"]["post"]["parameters"]
            if p["name"].startswith(("Signature", "Content-Digest"))]
    assert signed == sent
    assert len(signed) == 3
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoticeReceipt"}


@pytest.mark.parametrize("side", ["gateway", "messenger"])
def test_the_document_is_valid_openapi(documents: dict[str, Document], side: str) -> None:
    """openapi-spec-validator accepts the gateway's and the messenger's document."""
    from openapi_spec_validator import validate

    validate(documents[side])


@pytest.mark.anyio
async def test_every_served_camara_document_is_valid_openapi(tmp_path: Path) -> None:
    """openapi-spec-validator accepts the document of every CAMARA version served."""
    from openapi_spec_validator import validate

    served = await camara_documents(tmp_path)
    for root, document in served.items():
        assert document["servers"] == [{"url": "http://127.0.0.1:8080"}], root
        validate(document)


def test_a_batch_answer_is_valid_by_its_documented_schema(documents: dict[str, Document]) -> None:
    """createIdentificationBatch documents its 200: per item, the request's answer with its
    index, or the item's refusal (its index and the error body)."""
    gateway = documents["gateway"]
    operation = gateway["paths"]["/identification/v1/requests/batch"]["post"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    validator = resolving(gateway, ref.rsplit("/", 1)[1])
    answer = {"results": [
        {"index": 0, "requestId": "r-1", "phoneNumber": "+79161234567",
         "identificationCode": "user-42", "status": "answered", "result": "confirmed",
         "receivedAt": "2026-12-01T09:00:00Z", "answeredAt": "2026-12-01T09:00:00Z",
         "answerDue": "2026-12-01T09:20:00Z"},
        {"index": 1, "error": {"status": 400, "code": "INVALID_PHONE_NUMBER",
                               "message": "phone number is empty"}}]}
    validator.validate(answer)
    assert not validator.is_valid({"results": [{"index": 1, "error": {"code": "X"}}]})
