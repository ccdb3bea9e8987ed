"""The one exception tree of numident.

Every error that crosses an API boundary is a :class:`NumidentError` with a stable,
machine-readable ``code`` and a message for people::

    NumidentError
    ├── InvalidInput            INVALID_ARGUMENT (and the more precise codes below)
    │   ├── InvalidPhoneNumber  INVALID_PHONE_NUMBER
    │   ├── InvalidIdentificationCode INVALID_IDENTIFICATION_CODE
    │   └── InvalidFile         a data file rejected, names line and field
    ├── Unauthenticated         UNAUTHENTICATED (INVALID_TOKEN, TOKEN_EXPIRED, ...)
    ├── PermissionDenied        PERMISSION_DENIED
    ├── NotFound                NOT_FOUND
    ├── Conflict                CONFLICT
    ├── Unprocessable           well-formed but unserviceable (CAMARA: MISSING_IDENTIFIER, ...)
    ├── TooManyRequests         TOO_MANY_REQUESTS, QUOTA_EXCEEDED (carries ``retry_after``)
    ├── UpstreamUnavailable     UNAVAILABLE (an operator gateway could not be reached)
    └── ConfigurationError      settings are missing or wrong (names the key)

The tree knows no transport: what each error is in HTTP (status, headers, the CAMARA body) is
decided only in :mod:`numident.web.errors`, and the CLI's exit statuses in ``numident.cli``.
Library errors are translated at the boundary (``raise Ours(...) from exc``). A "no" that the
rules expect (number not found, deadline passed) is a result value, never one of these.
"""

from __future__ import annotations

from dataclasses import dataclass


class NumidentError(Exception):
    code: str = "INTERNAL"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(NumidentError):
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
    code = "UNAUTHENTICATED"


class PermissionDenied(NumidentError):
    code = "PERMISSION_DENIED"


class NotFound(NumidentError):
    code = "NOT_FOUND"


class Conflict(NumidentError):
    code = "CONFLICT"


class Unprocessable(NumidentError):
    """A well-formed request the rules cannot serve (CAMARA ``MISSING_IDENTIFIER``...)."""

    code = "UNPROCESSABLE_ENTITY"


class TooManyRequests(NumidentError):
    code = "TOO_MANY_REQUESTS"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)


class UpstreamUnavailable(NumidentError):
    code = "UNAVAILABLE"


class ConfigurationError(NumidentError):
    code = "CONFIGURATION"

