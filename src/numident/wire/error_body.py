"""The error body of every numident API: ``{"status","code","message"}``.

``status`` repeats the HTTP status, ``code`` is the stable machine-readable code
(:mod:`numident.errors`), ``message`` is for people. The CAMARA APIs answer the same body under
CAMARA's name for it, ``ErrorInfo``, so their documents read as CAMARA's do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str


class ErrorInfo(ErrorBody):
    pass


def error_responses(model: type[ErrorBody], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation that can refuse with ``statuses``, documented as
    ``model``."""
    return {status: {"model": model} for status in statuses}
