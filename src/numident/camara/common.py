"""What every CAMARA API of the gateway shares: strict bodies, the caller, and the subject line.

* Request bodies are :class:`CamaraModel`: an undeclared property at any level is 400
  ``INVALID_ARGUMENT`` (the specs' request-body strictness).
* :func:`caller_with` is the dependency of an operation needing one OAuth2 scope. Token problems
  are 401 ``UNAUTHENTICATED`` and a missing scope 403 ``PERMISSION_DENIED``, as CAMARA names
  them (the identification API keeps its finer codes).
* :func:`subject` picks the phone number a request is about: from a three-legged token, or from
  the body of a two-legged one; both or neither is 422 (``UNNECESSARY_IDENTIFIER``,
  ``MISSING_IDENTIFIER``). Lines in a configured not-applicable range are 422
  ``SERVICE_NOT_APPLICABLE``; numbers the registry does not hold are 404
  ``IDENTIFIER_NOT_FOUND``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select

from numident.config import CamaraSettings
from numident.errors import NotFound, PermissionDenied, Unauthenticated, Unprocessable
from numident.operator.api import authenticator, gateway
from numident.operator.gateway import Gateway
from numident.operator.organizers import OrganizerRecord
from numident.operator.security import bearer
from numident.operator.tables import subscribers
from numident.storage.database import read_only
from numident.trust.tokens import TokenClaims
from numident.web.access_log import note_subscriber
from numident.wire.error_body import ErrorInfo
from numident.wire.error_body import error_responses as wire_error_responses

PHONE_NUMBER_PATTERN = r"^\+[1-9][0-9]{4,14}$"
PhoneNumber = Annotated[str, Field(pattern=PHONE_NUMBER_PATTERN, examples=["+79161234567"],
                                   description="E.164 with the leading +")]


class CamaraModel(BaseModel):
    """A request body that refuses undeclared properties."""

    model_config = ConfigDict(extra="forbid")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return wire_error_responses(ErrorInfo, *statuses)


@dataclass(frozen=True)
class Caller:
    """Who calls (the organizer) and with which token; ``phone_number`` for 3-legged tokens."""

    organizer: OrganizerRecord
    token: TokenClaims
    gateway: Gateway

    @property
    def phone_number(self) -> str | None:
        return self.token.phone_number

    @property
    def engine(self) -> Engine:
        return self.gateway.engine

    @property
    def settings(self) -> CamaraSettings:
        return self.gateway.settings.camara

    def now(self) -> datetime:
        return self.gateway.clock.now()


def caller_with(scope: str, *alternatives: str) -> Callable[..., Caller]:
    """The dependency that admits only callers whose token grants ``scope`` or one of the
    ``alternatives`` (an API's umbrella scope, such as ``sim-swap``); the documents name
    each as an ``openId`` requirement, as the CAMARA documents do."""
    token = bearer(scope, *alternatives)

    def dependency(request: Request, authorization: str | None = Depends(token)) -> Caller:
        try:
            record, claims = authenticator(request).caller(authorization, scope,
                                                           *alternatives)
        except Unauthenticated as exc:
            raise Unauthenticated(exc.message, code="UNAUTHENTICATED") from exc
        except PermissionDenied as exc:
            raise PermissionDenied(exc.message, code="PERMISSION_DENIED") from exc
        return Caller(record, claims, gateway(request))

    return dependency


def subject(caller: Caller, given: str | None) -> str:
    """The line a request is about (see the module's docstring for the refusals)."""
    if caller.phone_number is not None:
        if given is not None:
            raise Unprocessable("the phone number is identified by the access token and must "
                                "not be given in the request", code="UNNECESSARY_IDENTIFIER")
        number = caller.phone_number
    elif given is None:
        raise Unprocessable("the phone number cannot be identified from the access token and "
                            "is not given in the request", code="MISSING_IDENTIFIER")
    else:
        number = given
    if any(number.startswith(prefix) for prefix in caller.settings.not_applicable_prefixes):
        raise Unprocessable("the service is not available for this phone number",
                            code="SERVICE_NOT_APPLICABLE")
    note_subscriber(number)
    return number


@dataclass(frozen=True)
class Line:
    """The registry's current row for a number."""

    phone_number: str
    contract_id: str
    status: str
    activated_at: datetime | None
    sim_changed_at: datetime | None


def registry_line(engine: Engine, number: str) -> Line:
    """The registry's row for ``number``, or 404 ``IDENTIFIER_NOT_FOUND``."""
    with read_only(engine) as conn:
        return read_line(conn, number)


def read_line(conn: Connection, number: str) -> Line:
    """:func:`registry_line` within the caller's transaction."""
    row = conn.execute(select(subscribers.c.phone_number, subscribers.c.contract_id,
                              subscribers.c.status, subscribers.c.activated_at,
                              subscribers.c.sim_changed_at)
                       .where(subscribers.c.phone_number == number)).first()
    if row is None:
        raise NotFound("the phone number is not a line of this operator",
                       code="IDENTIFIER_NOT_FOUND")
    return Line(row.phone_number, row.contract_id, row.status, row.activated_at,
                row.sim_changed_at)
