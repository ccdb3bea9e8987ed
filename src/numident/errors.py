"""The one exception tree of numident.

Every error that crosses an API boundary is a :class:`NumidentError` with a stable,
machine-readable ``code`` and the HTTP ``status`` it maps to (CAMARA Commonalities style:
``{"status": int, "code": "STABLE_CODE", "message": str}``)::

    NumidentError
    ├── InvalidInput            400 INVALID_ARGUMENT (and the more precise codes below)
    │   ├── InvalidPhoneNumber  400 INVALID_PHONE_NUMBER
    │   ├── InvalidIdentificationCode 400 INVALID_IDENTIFICATION_CODE
    │   └── InvalidFile         2 (CLI) data file rejected, names line and field
    ├── Unauthenticated         401 UNAUTHENTICATED (INVALID_TOKEN, TOKEN_EXPIRED, ...)
    ├── PermissionDenied        403 PERMISSION_DENIED
    ├── NotFound                404 NOT_FOUND
    ├── Conflict                409 CONFLICT
    ├── Unprocessable           422 (CAMARA: MISSING_IDENTIFIER, SERVICE_NOT_APPLICABLE, ...)
    ├── TooManyRequests         429 TOO_MANY_REQUESTS, QUOTA_EXCEEDED (carries ``retry_after``)
    ├── UpstreamUnavailable     503 UNAVAILABLE (an operator gateway could not be reached)
    └── ConfigurationError      settings are missing or wrong (names the key)

Library errors are translated at the boundary (``raise Ours(...) from exc``). A "no" that the
rules expect (number not found, deadline passed) is a result value, never one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class NumidentError(Exception):
    status: int = 500
    code: str = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        return {"status": self.status, "code": self.code, "message": self.message}


class InvalidInput(NumidentError):
    status = 400
    code = "INVALID_ARGUMENT"


class InvalidPhoneNumber(InvalidInput):
    code = "INVALID_PHONE_NUMBER"


class InvalidIdentificationCode(InvalidInput):
    code = "INVALID_IDENTIFICATION_CODE"


@dataclass(frozen=True)
class FileProblem:
    """One bad row of a data file: where it is and what is wrong with it."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, field {self.field!r}: {self.message}"


class InvalidFile(InvalidInput):
    """A data file was rejected as a whole; ``problems`` lists every bad row (capped)."""

    code = "INVALID_FILE"

    def __init__(self, path: str, problems: list[FileProblem], *, total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{path}: {self.total} bad row(s): {shown}{more}")


class Unauthenticated(NumidentError):
    status = 401
    code = "UNAUTHENTICATED"


class PermissionDenied(NumidentError):
    status = 403
    code = "PERMISSION_DENIED"


class NotFound(NumidentError):
    status = 404
    code = "NOT_FOUND"


class Conflict(NumidentError):
    status = 409
    code = "CONFLICT"


class Unprocessable(NumidentError):
    """422: a well-formed request the rules cannot serve (CAMARA ``MISSING_IDENTIFIER``...)."""

    status = 422
    code = "UNPROCESSABLE_ENTITY"


class TooManyRequests(NumidentError):
    status = 429
    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)


class UpstreamUnavailable(NumidentError):
    status = 503
    code = "UNAVAILABLE"


class ConfigurationError(NumidentError):
    code = "CONFIGURATION"


def error_headers(error: NumidentError) -> Mapping[str, str]:
    """Extra HTTP headers of an error: ``Retry-After`` (429), ``WWW-Authenticate`` (401)."""
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return {}
