"""CAMARA Number Recycling: has the subscriber of this number changed since a date?

``POST /check`` answers ``phoneNumberRecycled`` from the registry's contract history
(:mod:`numident.camara.contract_history`): true when the line's current holder started after
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
from sqlalchemy import select

from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
    registry_line,
    subject,
)
from numident.camara.contract_history import LineState, Record, Since, subscriber_since
from numident.camara.dates import CalendarDate, check_answerable
from numident.errors import InvalidInput
from numident.operator.tables import subscriber_history
from numident.storage.database import read_only

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


def line_state(caller: Caller, number: str) -> LineState:
    """The registry's current row of ``number`` (404 if none) and, if its start is unknown,
    its history."""
    line = registry_line(caller.engine, number)
    records: list[Record] = []
    if line.activated_at is None:
        with read_only(caller.engine) as conn:
            records = [Record(r.occurred_at, r.change, r.contract_id, r.status)
                       for r in conn.execute(
                           select(subscriber_history.c.occurred_at, subscriber_history.c.change,
                                  subscriber_history.c.contract_id, subscriber_history.c.status)
                           .where(subscriber_history.c.phone_number == number))]
    return LineState(line.contract_id, line.status, line.activated_at, records)


def known(answer: Since, field: str) -> bool:
    """True for an unchanged subscriber, False for a changed one; 400 when unknown."""
    if answer is Since.UNKNOWN:
        raise InvalidInput(f"the operator's records of this line do not reach back to {field}",
                           code="OUT_OF_RANGE")
    return answer is Since.UNCHANGED


@router.post("/check", operation_id="checkNumberRecycling",
             summary="Check whether the subscriber of the phone number has changed.")
def check(body: CreateCheckNumRecycling,
          caller: Annotated[Caller, Depends(caller_with(SCOPE))]) -> CheckNumRecyclingInfo:
    check_answerable(body.specifiedDate, "specifiedDate", today=caller.now().date(),
                     earliest=caller.settings.history_starts)
    state = line_state(caller, subject(caller, body.phoneNumber))
    unchanged = known(subscriber_since(state, body.specifiedDate), "specifiedDate")
    return CheckNumRecyclingInfo(phoneNumberRecycled=not unchanged)
