"""The gateway's HTTP API for organizers (paths and shapes fixed by SPEC)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from numident.core.identification import (
    IDENTIFICATION_CODE_PATTERN,
    RequestStatus,
    validate_identification_code,
)
from numident.core.numbers import INTERNATIONAL_PATTERN, normalize
from numident.errors import InvalidInput, NotFound
from numident.operator.auth import IDENTIFICATION_SCOPE, Authenticator
from numident.operator.gateway import Gateway
from numident.operator.identification import Item, RequestView
from numident.operator.organizers import OrganizerRecord
from numident.operator.security import CLIENT_CREDENTIALS, OPEN_ID, authorized
from numident.web.access_log import note_subscriber
from numident.web.errors import error_body
from numident.wire.answer import answer_document
from numident.wire.error_body import ErrorBody, error_responses

router = APIRouter()
MAX_BATCH = 1000


# The patterns document the core's checks (which answer with their own error codes), so
# they are schema annotations, not validation of the framework's.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
CodeInPath = Annotated[str, Path(json_schema_extra={"pattern": IDENTIFICATION_CODE_PATTERN})]


class IdentificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phoneNumber: StrictStr = Field(
        examples=["+79161234567"], json_schema_extra={"pattern": INTERNATIONAL_PATTERN},
        description="E.164 (separators are accepted and dropped)")
    identificationCode: StrictStr = Field(
        examples=["user-42"], json_schema_extra={"pattern": IDENTIFICATION_CODE_PATTERN})


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[IdentificationRequest] = Field(min_length=1, max_length=MAX_BATCH)


class RequestAnswer(BaseModel):
    requestId: str
    phoneNumber: str
    identificationCode: str
    status: Literal["pending", "answered", "expired"] = Field(
        description="expired: not answered by answerDue (after an outage of the operator's "
        "checks, say); the request may be sent again")
    result: Literal["confirmed", "not_found"] | None = Field(
        None, description="the answer, when status is answered")
    reason: str | None = Field(None, description="why, when status is expired")
    receivedAt: Timestamp
    answeredAt: Timestamp | None = None
    answerDue: Timestamp


class BatchItemAnswer(RequestAnswer):
    index: int = Field(description="The item's position in the batch")


class BatchItemRefusal(BaseModel):
    index: int = Field(description="The item's position in the batch")
    error: ErrorBody


class BatchAnswer(BaseModel):
    results: list[BatchItemAnswer | BatchItemRefusal] = Field(
        description="One per item, in the batch's order: its answer, or why it was refused")


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway  # type: ignore[no-any-return]


def authenticator(request: Request) -> Authenticator:
    return request.app.state.authenticator  # type: ignore[no-any-return]


async def _organizer(request: Request, authorization: str | None) -> OrganizerRecord:
    return await authenticator(request).organizer_soon(authorization)


organizer = authorized(_organizer, IDENTIFICATION_SCOPE, schemes=(CLIENT_CREDENTIALS, OPEN_ID))
"""The organizer whose token grants ``identification`` (a dependency)."""
Caller = Annotated[OrganizerRecord, Depends(organizer)]
ERRORS = error_responses(ErrorBody, 400, 401, 403, 404, 429)


def to_item(body: IdentificationRequest) -> Item:
    return Item(normalize(body.phoneNumber), validate_identification_code(body.identificationCode))


def _respond(view: RequestView) -> JSONResponse:
    if view.status is RequestStatus.PENDING:
        return JSONResponse(answer_document(view), status_code=202,
                            headers={"Location": f"/identification/v1/requests/{view.request_id}"})
    return JSONResponse(answer_document(view))


@router.post("/identification/v1/requests", operation_id="createIdentificationRequest",
             response_model=RequestAnswer,
             responses={202: {"model": RequestAnswer}, **ERRORS}, tags=["identification"],
             summary="Ask whether a number belongs to a subscriber (answer due in 20 minutes)")
async def create_request(body: IdentificationRequest, caller: Caller,
                         request: Request) -> JSONResponse:
    item = to_item(body)
    note_subscriber(item.phone_number)
    [view] = await gateway(request).submit(caller.organizer, [item])
    return _respond(view)


@router.get("/identification/v1/requests/{requestId}", response_model=RequestAnswer,
            operation_id="getIdentificationRequest",
            responses=ERRORS, tags=["identification"])
def read_request(requestId: str, caller: Caller, request: Request) -> JSONResponse:
    view = gateway(request).request(caller.organizer, requestId)
    note_subscriber(view.phone_number)
    return JSONResponse(answer_document(view))


@router.post("/identification/v1/requests/batch", operation_id="createIdentificationBatch",
             response_model=BatchAnswer, responses=ERRORS, tags=["identification"],
             summary="Up to 1000 requests; each item is answered or refused on its own")
async def create_batch(body: BatchRequest, caller: Caller, request: Request) -> JSONResponse:
    results: list[dict[str, Any] | None] = [None] * len(body.requests)
    valid: list[tuple[int, Item]] = []
    for index, entry in enumerate(body.requests):
        try:
            valid.append((index, to_item(entry)))
        except InvalidInput as exc:
            results[index] = {"index": index, "error": error_body(exc)}
    if valid:
        # A 429 refuses the whole batch: none of it was accepted, all of it may be retried.
        views = await gateway(request).submit(caller.organizer,
                                              [item for _, item in valid])
        for (index, _), view in zip(valid, views, strict=True):
            results[index] = {"index": index, **answer_document(view)}
    return JSONResponse({"results": results})


@router.delete("/identification/v1/usages/{identificationCode}", status_code=204,
               operation_id="withdrawUsage",
               responses=ERRORS, tags=["identification"],
               summary="The organizer withdraws its usage of an identification code")
def withdraw_usage(identificationCode: CodeInPath, caller: Caller,
                   request: Request) -> Response:
    code = validate_identification_code(identificationCode)
    if not gateway(request).withdraw(caller.organizer, code):
        raise NotFound(f"no active usage of {code}", code="USAGE_NOT_FOUND")
    return Response(status_code=204)
