"""The HTTP face of the error tree: statuses, headers and bodies, decided in web.errors only."""

from __future__ import annotations

import pytest

from numident.errors import (
    ConfigurationError,
    Conflict,
    InvalidFile,
    InvalidIdentificationCode,
    InvalidInput,
    InvalidPhoneNumber,
    NotFound,
    NumidentError,
    PermissionDenied,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
    UpstreamUnavailable,
)
from numident.web.errors import error_body, error_headers, http_status


@pytest.mark.parametrize(("error", "status"), [
    (InvalidInput("x"), 400), (InvalidPhoneNumber("x"), 400),
    (InvalidIdentificationCode("x"), 400), (InvalidFile("f.csv", []), 400),
    (Unauthenticated("x"), 401), (PermissionDenied("x"), 403), (NotFound("x"), 404),
    (Conflict("x"), 409), (Unprocessable("x"), 422),
    (TooManyRequests("x", retry_after=3), 429), (UpstreamUnavailable("x"), 503),
    (ConfigurationError("x"), 500), (NumidentError("x"), 500),
])
def test_each_branch_of_the_tree_has_its_status(error: NumidentError, status: int) -> None:
    """A subclass answers as its nearest branch; an error no branch claims is a 500."""
    assert http_status(error) == status


def test_the_body_is_camaras_and_keeps_the_precise_code() -> None:
    """{"status", "code", "message"}, the code the raiser chose."""
    refused = NotFound("no account u-1", code="ACCOUNT_NOT_FOUND")
    assert error_body(refused) == {"status": 404, "code": "ACCOUNT_NOT_FOUND",
                                   "message": "no account u-1"}


def test_only_429_and_401_carry_headers() -> None:
    """Retry-After in whole seconds (at least 1), a Bearer challenge on 401."""
    assert error_headers(TooManyRequests("x", retry_after=0)) == {"Retry-After": "1"}
    assert error_headers(Unauthenticated("x")) == {
        "WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert error_headers(Conflict("x")) == {}
