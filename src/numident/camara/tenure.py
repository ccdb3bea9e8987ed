"""CAMARA KYC Tenure: has the line's current subscriber held it since a date?

``POST /check-tenure`` answers ``tenureDateCheck`` from the same contract history as Number
Recycling (:mod:`numident.camara.contract_history`, by the date check of
:mod:`numident.camara.subscriber_since`): true when the current holder's contract
has been in force, without a change of holder, since ``tenureDate``. ``contractType``
(``PAYG``, ``PAYM``, ``Business``) comes from the billing export's ``contract_type`` for that
holder and is left out when unknown. A ``tenureDate`` in the future or before the operator's
threshold (``operator.camara.history_starts``) is 400 ``OUT_OF_RANGE``.
"""

from __future__ import annotations

from typing import Annotated, Literal

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
from numident.camara.holders import current_holder
from numident.camara.subscriber_since import unchanged_since

SCOPE = "kyc-tenure:check-tenure"
router = APIRouter(tags=["Check Subscriber Tenure"],
                   responses=error_responses(400, 401, 403, 404, 422))


class Tenure(CamaraModel):
    phoneNumber: PhoneNumber | None = None
    tenureDate: CalendarDate = Field(
        description="The day from which continuous tenure is to be confirmed (YYYY-MM-DD)")


class TenureInfo(BaseModel):
    tenureDateCheck: bool
    contractType: Literal["PAYG", "PAYM", "Business"] | None = None


@router.post("/check-tenure", operation_id="checkTenure", response_model=TenureInfo,
             response_model_exclude_none=True, summary="The KYC Tenure service API")
def check_tenure(body: Tenure,
                 caller: Annotated[Caller, Depends(caller_with(SCOPE))]) -> TenureInfo:
    number, held = unchanged_since(caller, body.phoneNumber, body.tenureDate, "tenureDate")
    contract_type = current_holder(caller.engine, number)["contract_type"]
    return TenureInfo(tenureDateCheck=held, contractType=contract_type)
