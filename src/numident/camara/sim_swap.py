"""CAMARA SIM Swap: when did this line last change SIM, and did it within the last hours?

The latest SIM change of a line is the latest of what the registry knows: the time of the last
``sim_swapped`` lifecycle event (the events table, so that events arriving out of order do not
hide a later swap), the row's ``sim_changed_at``, and its ``activated_at`` (the activation of
the line's SIM, which the spec counts as a SIM change: a new subscription is a swap too).
A line with none of them has never been associated with a SIM.

An operator whose rules limit how long SIM changes may be kept sets
``operator.camara.sim_swap_monitored_days``: a change older than that is answered as
``latestSimChange: null`` with ``monitoredPeriod``, and a check whose ``maxAge`` reaches
beyond it is 400 ``OUT_OF_RANGE``. ``maxAge`` is 1..2400 hours (240 by default); above 2400 is
``OUT_OF_RANGE``, anything else outside the schema ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field, StrictInt
from sqlalchemy import Engine, func, select

from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
    read_line,
    subject,
)
from numident.errors import InvalidInput
from numident.operator.tables import lifecycle_events
from numident.storage.database import read_only

MAX_AGE_LIMIT = 2400
DEFAULT_MAX_AGE = 240
UMBRELLA = "sim-swap"
"""The scope that the specification accepts for both operations."""
router = APIRouter(tags=["SIM Swap"],
                   responses=error_responses(400, 401, 403, 404, 422, 429))


class CreateCheckSimSwap(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    maxAge: StrictInt = Field(
        DEFAULT_MAX_AGE, ge=1, json_schema_extra={"maximum": MAX_AGE_LIMIT, "format": "int32"},
        description="Period in hours to be checked for SIM swap")


class CreateSimSwapDate(CamaraModel):
    phoneNumber: PhoneNumber | None = None


class CheckSimSwapInfo(CamaraModel):
    swapped: bool


class SimSwapInfo(CamaraModel):
    latestSimChange: datetime | None = Field(
        description="Timestamp of the latest SIM change; null when none is known or it is "
        "older than the monitored period")
    monitoredPeriod: int | None = Field(
        None, description="Days of SIM change supervision; present when the latest change "
        "is older than that")


def latest_sim_change(engine: Engine, number: str) -> datetime | None:
    """The latest SIM change of a line in the registry (see the module docstring)."""
    with read_only(engine) as conn:
        line = read_line(conn, number)
        swapped = conn.execute(select(func.max(lifecycle_events.c.occurred_at)).where(
            lifecycle_events.c.phone_number == number,
            lifecycle_events.c.type == "sim_swapped")).scalar_one_or_none()
    known = [t for t in (swapped, line.sim_changed_at, line.activated_at) if t is not None]
    return max(known, default=None)


def check_range(max_age: int, monitored_days: int | None) -> None:
    """400 OUT_OF_RANGE for a ``maxAge`` beyond the spec's limit or the monitored period."""
    if max_age > MAX_AGE_LIMIT:
        raise InvalidInput(f"maxAge must be between 1 and {MAX_AGE_LIMIT} hours",
                           code="OUT_OF_RANGE")
    if monitored_days is not None and max_age > monitored_days * 24:
        raise InvalidInput(f"Check monitor period could not exceed local regulations "
                           f"({monitored_days} days)", code="OUT_OF_RANGE")


@router.post("/check", response_model=CheckSimSwapInfo, operation_id="checkSimSwap",
             summary="Has the line's SIM changed within the last maxAge hours?")
def check(body: CreateCheckSimSwap,
          caller: Annotated[Caller, Depends(caller_with("sim-swap:check", UMBRELLA))]
          ) -> CheckSimSwapInfo:
    check_range(body.maxAge, caller.settings.sim_swap_monitored_days)
    latest = latest_sim_change(caller.engine, subject(caller, body.phoneNumber))
    since = caller.now() - timedelta(hours=body.maxAge)
    return CheckSimSwapInfo(swapped=latest is not None and latest >= since)


@router.post("/retrieve-date", response_model=SimSwapInfo, response_model_exclude_unset=True,
             operation_id="retrieveSimSwapDate", summary="When did the line's SIM last change?")
def retrieve_date(body: CreateSimSwapDate,
                  caller: Annotated[Caller, Depends(
                      caller_with("sim-swap:retrieve-date", UMBRELLA))]
                  ) -> SimSwapInfo:
    latest = latest_sim_change(caller.engine, subject(caller, body.phoneNumber))
    days = caller.settings.sim_swap_monitored_days
    if latest is not None and days is not None and latest < caller.now() - timedelta(days=days):
        return SimSwapInfo(latestSimChange=None, monitoredPeriod=days)
    return SimSwapInfo(latestSimChange=latest)
