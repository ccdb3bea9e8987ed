"""The one place where errors become HTTP responses.

Every error body is ``{"status": int, "code": "STABLE_CODE", "message": str}`` (CAMARA
Commonalities). The errors of :mod:`numident.errors` get their statuses here, and only here::

    InvalidInput 400 · Unauthenticated 401 (``WWW-Authenticate``) · PermissionDenied 403
    NotFound 404 · Conflict 409 · Unprocessable 422 · TooManyRequests 429 (``Retry-After``)
    UpstreamUnavailable 503 · any other NumidentError 500
 Validation failures of the framework become 400 ``INVALID_ARGUMENT`` naming the
field; unknown routes 404 (a part of the server may explain them: :func:`explain_not_found`);
anything unexpected 500 ``INTERNAL`` without internals in the body. A 405's ``Allow`` names the
methods of every route matching the path (:func:`allowed_methods`). A client that disconnects
before its request body is read (the server's body deadline closes slow ones) is no error of the
server's: it is logged as such, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from numident.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NumidentError,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
    UpstreamUnavailable,
)

log = structlog.get_logger(__name__)

HTTP_STATUSES: Mapping[type[NumidentError], int] = {
    InvalidInput: 400, Unauthenticated: 401, PermissionDenied: 403, NotFound: 404,
    Conflict: 409, Unprocessable: 422, TooManyRequests: 429, UpstreamUnavailable: 503,
}
"""The status of each branch of the error tree; a subclass answers as its nearest branch."""


def http_status(error: NumidentError) -> int:
    """The HTTP status ``error`` is answered with (500 for an error no branch claims)."""
    return next((HTTP_STATUSES[cls] for cls in type(error).__mro__ if cls in HTTP_STATUSES), 500)


def error_headers(error: NumidentError) -> dict[str, str]:
    """Extra HTTP headers of an error: ``Retry-After`` (429), ``WWW-Authenticate`` (401)."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return {}


def error_body(error: NumidentError) -> dict[str, object]:
    """The CAMARA error body of ``error``: ``{"status", "code", "message"}``."""
    return {"status": http_status(error), "code": error.code, "message": error.message}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "message": message},
                        status_code=status, headers=headers)


def _location(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _numident_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NumidentError)
    return error_response(http_status(exc), exc.code, exc.message, error_headers(exc))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request",
                                      "type": "value_error"}
    where = _location(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return error_response(400, "INVALID_ARGUMENT", "request body is not valid JSON")
    if first.get("type") == "extra_forbidden":
        return error_response(400, "INVALID_ARGUMENT", f"unknown field {where!r}")
    return error_response(400, "INVALID_ARGUMENT", f"{where}: {first.get('msg')}")


NotFoundExplainer = Callable[[str], str | None]
"""The message for a path no route has, or None when the path is not its part's."""


def explain_not_found(app: FastAPI, explainer: NotFoundExplainer) -> None:
    """Let ``explainer`` word the 404 of paths that no route matches (the first that answers
    wins); the others keep the framework's message."""
    explainers: list[NotFoundExplainer] = getattr(app.state, "not_found_explainers", [])
    app.state.not_found_explainers = [*explainers, explainer]


METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """The methods that some route serves at the request's path, as an ``Allow`` value.

    The router answers a method mismatch from the first route whose path matches, so its
    ``Allow`` leaves out the methods of the others (``/requests/batch`` also matches
    ``/requests/{requestId}``, which comes first). Here each method is put to every route,
    through the routes' own matching, so included routers and path parameters count alike.
    """
    routes = request.app.router.routes
    return ", ".join(
        method for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHENTICATED",
             403: "PERMISSION_DENIED", 413: "PAYLOAD_TOO_LARGE"}
    message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and "Allow" in headers:
        headers["Allow"] = allowed_methods(request) or headers["Allow"]
    if exc.status_code == 404:
        explainers: list[NotFoundExplainer] = getattr(request.app.state,
                                                      "not_found_explainers", [])
        message = next((m for e in explainers if (m := e(request.url.path)) is not None),
                       message)
    return error_response(exc.status_code, codes.get(exc.status_code, "INVALID_ARGUMENT"),
                          message, headers)


async def _client_gone(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ClientDisconnect)
    log.info("client disconnected before its request was read", path=request.url.path)
    # 499 as nginx logs it; the server drops it, the connection being gone.
    return Response(status_code=499)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    return error_response(500, "INTERNAL", "the server could not complete the request")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(NumidentError, _numident_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
