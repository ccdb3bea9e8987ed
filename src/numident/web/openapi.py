"""The OpenAPI documents as the servers really behave, finished from what the framework writes.

The framework documents a 422 ``HTTPValidationError`` for every operation with parameters or a
body, but the servers answer a request that fails validation with 400 and the error body
(:mod:`numident.web.errors`). :func:`errors_as_served` rewrites each such operation: the 422
goes, and its 400 is the error schema its other error responses use (the document's own error
schema when it has none). :func:`install_document` makes an application serve its document
finished this way, so ``/openapi.json``, the ``openapi`` commands and the checked-in files agree.

The other finishers declare what no route declares because the whole server does it: the
``x-correlator`` header that :class:`numident.web.middleware.Correlator` echoes
(:func:`correlated`), where the server is (:func:`served_at`) and security schemes that a
client needs to know although no operation requires them (:func:`with_schemes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.security.base import SecurityBase
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from numident.web.middleware import CORRELATOR_PATTERN

Document = dict[str, Any]
Finisher = Callable[[Document], None]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operations(document: Document) -> Iterator[Document]:
    """Every operation object of the document's paths and webhooks."""
    items = [*document.get("paths", {}).values(), *document.get("webhooks", {}).values()]
    for item in items:
        for method in METHODS:
            if method in item:
                yield item[method]


def _schema_ref(response: Document | None) -> str | None:
    if response is None:
        return None
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref")
    return ref if isinstance(ref, str) else None


def _error_response(ref: str) -> Document:
    return {"description": "The request is not valid: a field is missing, malformed or unknown "
            "(code INVALID_ARGUMENT, the message names the field)",
            "content": {"application/json": {"schema": {"$ref": ref}}}}


def errors_as_served(document: Document, error_schema: str) -> None:
    """Replace the framework's 422 validation response by the 400 the server returns.

    ``error_schema`` names the component schema of the error body, used where an operation
    documents no other error. A 422 that an operation declares itself (with its own schema)
    is a real answer and stays.
    """
    framework = "#/components/schemas/HTTPValidationError"
    for operation in operations(document):
        responses: Document = operation.get("responses", {})
        if _schema_ref(responses.get("422")) != framework:
            continue
        del responses["422"]
        if "400" not in responses:
            refs = [r for status, response in sorted(responses.items())
                    if status[0] in "45" and (r := _schema_ref(response)) is not None]
            responses["400"] = _error_response(
                refs[0] if refs else f"#/components/schemas/{error_schema}")
    schemas: Document = document.get("components", {}).get("schemas", {})
    for name in VALIDATION_SCHEMAS:
        schemas.pop(name, None)


CORRELATOR_SCHEMA: Document = {"type": "string", "pattern": f"^{CORRELATOR_PATTERN}$",
                               "examples": ["b4333c46-49c0-4f62-80d7-f0ef930f1c46"]}


def correlated(document: Document) -> None:
    """Declare on every operation the optional ``x-correlator`` and ``X-Request-Id`` request
    headers, on every response that a well-formed correlator is echoed back, and that every
    response carries the request id the access log names it by."""
    parameters_added: list[Document] = [
        {"in": "header", "name": "x-correlator", "required": False,
         "description": "Correlation id, echoed back when it matches the pattern",
         "schema": CORRELATOR_SCHEMA},
        {"in": "header", "name": "X-Request-Id", "required": False,
         "description": "The id the server logs the request by (with the pattern of "
         "x-correlator); without a valid one, x-correlator's, else a new one",
         "schema": CORRELATOR_SCHEMA}]
    correlator = {"description": "The request's x-correlator, when it had a valid one",
                  "schema": CORRELATOR_SCHEMA}
    request_id = {"description": "The request's id in the server's logs: its valid "
                  "X-Request-Id, else its valid x-correlator, else a new one",
                  "schema": CORRELATOR_SCHEMA}
    for operation in operations(document):
        parameters: list[Document] = operation.setdefault("parameters", [])
        for added in parameters_added:
            name = str(added["name"]).lower()
            if not any(p.get("in") == "header" and str(p.get("name", "")).lower() == name
                       for p in parameters):
                parameters.append(added)
        for response in operation.get("responses", {}).values():
            headers = response.setdefault("headers", {})
            headers["x-correlator"] = correlator
            headers["x-request-id"] = request_id


def scopes_as_alternatives(document: Document) -> None:
    """Give each scope of a security requirement a requirement of its own.

    The framework merges the scopes that an operation's dependencies declare for one scheme
    into one requirement, which OpenAPI reads as all of them needed; the gateway grants an
    operation on any one of them (a specific scope or the API's umbrella scope, as the CAMARA
    documents list them).
    """
    for operation in operations(document):
        split: list[Document] = []
        for requirement in operation.get("security", []):
            for name, scopes in requirement.items():
                split += [{name: [scope]} for scope in scopes] or [{name: []}]
        if split:
            operation["security"] = split


def served_at(url: str) -> Finisher:
    """A finisher naming ``url`` as the document's one server."""

    def finish(document: Document) -> None:
        document["servers"] = [{"url": url}]

    return finish


def with_schemes(*schemes: SecurityBase) -> Finisher:
    """A finisher declaring ``schemes`` in ``components.securitySchemes`` beside those the
    operations require."""

    def finish(document: Document) -> None:
        declared: Document = document.setdefault("components", {}).setdefault(
            "securitySchemes", {})
        for scheme in schemes:
            declared.setdefault(scheme.scheme_name, jsonable_encoder(
                scheme.model, by_alias=True, exclude_none=True))

    return finish


def with_models(*models: type[BaseModel]) -> Finisher:
    """A finisher adding the schemas of ``models`` (and of the models they use) to
    ``components.schemas``, for operations that declare a body they read themselves."""

    def finish(document: Document) -> None:
        _, top = models_json_schema([(model, "validation") for model in models],
                                    ref_template="#/components/schemas/{model}")
        schemas: Document = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in top.get("$defs", {}).items():
            schemas.setdefault(name, schema)

    return finish


def install_document(app: FastAPI, *finishers: Finisher) -> None:
    """Serve ``app``'s document (built once, on first use) after ``finishers`` have run on it."""
    build = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            document = build()
            for finish in finishers:
                finish(document)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
