"""The OpenAPI documents as the servers really behave, finished from what the framework writes.

The framework documents a 422 ``HTTPValidationError`` for every operation with parameters or a
body, but the servers answer a request that fails validation with 400 and the error body
(:mod:`numident.web.errors`). :func:`errors_as_served` rewrites each such operation: the 422
goes, and its 400 is the error schema its other error responses use (the document's own error
schema when it has none). :func:`install_document` makes an application serve its document
finished this way, so ``/openapi.json``, the ``openapi`` commands and the checked-in files agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

Document = dict[str, Any]
Finisher = Callable[[Document], None]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def operations(document: Document) -> Iterator[Document]:
    """Every operation object of the document's paths."""
    for item in document.get("paths", {}).values():
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
