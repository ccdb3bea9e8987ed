"""CAMARA Number Recycling: has the subscriber of this number changed since a date?

``POST /check`` answers ``phoneNumberRecycled`` from the registry's contract history
(:mod:`numident.camara.contract_history`, by the date check of
:mod:`numident.camara.subscriber_since`): true when the line's current holder started after
``specifiedDate``, when its contract ended or passed to someone else since, or when no contract
was in force on that day; false when the same holder's contract has been in force from that
day until now (the day the holder signed included). A ``specifiedDate`` in the future, before
``operator.camara.history_starts``, or before anything the registry knows of a line whose
contract start is unknown is 400 ``OUT_OF_RANGE``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
)
from numident.camara.dates import CalendarDate
from numident.camara.subscriber_since import unchanged_since

SCOPE = "number-recycling:check"
router = APIRouter(tags=["Check Number Recycling"],
                   responses=error_responses(400, 401, 403, 404, 422))


class CreateCheckNumRecycling(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    specifiedDate: CalendarDate = Field(
        description="Has the subscriber changed after this day (YYYY-MM-DD)?")


class CheckNumRecyclingInfo(BaseModel):
    phoneNumberRecycled: bool = Field(
        description="True when the subscriber of the number changed after specifiedDate")


@router.post("/check", operation_id="checkNumberRecycling",
             summary="Check whether the subscriber of the phone number has changed.")
def check(body: CreateCheckNumRecycling,
          caller: Annotated[Caller, Depends(caller_with(SCOPE))]) -> CheckNumRecyclingInfo:
    _, unchanged = unchanged_since(caller, body.phoneNumber, body.specifiedDate,
                                   "specifiedDate")
    return CheckNumRecyclingInfo(phoneNumberRecycled=not unchanged)
